package dev.slmkit.routing

/**
 * The confidence methods' arithmetic (runtime/confidence/: options.py, rating.py, logprob.py, head.py), pinned
 * by the golden vectors options, option_choice, rating_distribution, token_confidence and trained_head.
 */

/** A prompt evaluated by the tier's engine, extendable token by token with the KV cache kept. */
interface Continuation {
    val promptTokens: Int
    /** Natural-log probabilities of the next token over the vocabulary. */
    fun logprobs(): DoubleArray
    fun append(tokens: List<Int>)
    /** Token ids of `text` as a continuation (no BOS, special tokens not parsed). */
    fun tokenize(text: String): List<Int>
}

object TokenConfidence {
    val FEATURES = listOf("mean", "min", "first", "first_margin", "mean_margin")

    fun logSoftmax(logits: DoubleArray): DoubleArray {
        if (logits.isEmpty()) return logits
        val top = logits.reduce { a, b -> Math.max(a, b) }
        var sum = 0.0
        for (x in logits) sum += Math.exp(x - top)
        val norm = top + Math.log(sum)
        return DoubleArray(logits.size) { logits[it] - norm }
    }

    /** (log-probability of `token`, its log-probability minus the best other token's). */
    fun tokenStats(logits: DoubleArray, token: Int): Pair<Double, Double> {
        val logprobs = logSoftmax(logits)
        var other = Double.NEGATIVE_INFINITY
        for (i in logprobs.indices) if (i != token && logprobs[i] > other) other = logprobs[i]
        return Pair(logprobs[token], logprobs[token] - other)
    }

    private fun sigmoid(x: Double): Double = if (x >= 0) 1.0 / (1.0 + Math.exp(-x)) else Math.exp(x) / (1.0 + Math.exp(x))

    fun confidence(feature: String, logprobs: List<Double>, margins: List<Double>): Double {
        require(feature in FEATURES) { "unknown token_logprob feature $feature" }
        if (logprobs.isEmpty()) return 0.0
        return when (feature) {
            "mean" -> Math.exp(logprobs.sum() / logprobs.size)
            "min" -> Math.exp(logprobs.reduce { a, b -> Math.min(a, b) })
            "first" -> Math.exp(logprobs[0])
            "first_margin" -> sigmoid(margins[0])
            else -> sigmoid(margins.sum() / margins.size)
        }
    }
}

object Options {
    private const val MAX_ITEM_CHARS = 48
    private const val MAX_ITEM_WORDS = 4
    private const val MIN_OPTIONS = 2
    // Python's patterns (runtime/confidence/options.py) through PyRegex: Python's \w \b \s, only \n ends a line.
    private const val CUE = "(?:\\bone of(?: the following| these)?(?: [a-z]+)?|\\boptions(?: are)?|\\bpossible [a-z]+" +
        "|\\bchoices(?: are)?|\\bchoose from|\\blabels(?: are)?|\\bcategories(?: are)?)"
    private val CUED_LINES = PyRegex.compile("$CUE\\s*:[ \\t]*\\n((?:[ \\t]*[-*]?[ \\t]*[^\\n]+\\n?)+)", ignoreCase = true)
    private val CUED_INLINE = PyRegex.compile("$CUE\\s*(?::|-|–)[ \\t]*([^\\n]+?)(?:\\.(?:\\s|$)|\\?(?:\\s|$)|\\n|$)", ignoreCase = true)
    private val ANSWER_LIST = PyRegex.compile("\\banswer(?: with)?\\s+((?:[\\w'-]+(?: [\\w'-]+){0,3}, )+[\\w'-]+(?: [\\w'-]+){0,3},? or " +
        "[\\w'-]+(?: [\\w'-]+){0,3})\\s*(?:\\.|$)", ignoreCase = true, multiline = true)
    private val SLASHED = PyRegex.compile("\\(([^()\\n]+?(?:\\s/\\s[^()\\n]+?)+)\\)")
    private val JSON_FORM = PyRegex.compile("\\{[^{}\\n]*<[a-z_]+>[^{}\\n]*\\}")
    private val PLACEHOLDER = Regex("<[a-z_]+>")
    private val WHITESPACE = PyRegex.compile("\\s+")
    private const val STRIP = " \t\"'`*-"

    private fun items(text: String, separators: Regex): List<String>? {
        val parts = PyText.strip(text).split(separators).map { PyText.strip(it, STRIP) }.filter { it.isNotEmpty() }
        if (parts.size < MIN_OPTIONS || parts.toSet().size != parts.size) return null
        if (parts.any { it.codePointCount(0, it.length) > MAX_ITEM_CHARS || PyText.strip(it).split(WHITESPACE).size > MAX_ITEM_WORDS }) return null
        return parts
    }

    private val INLINE_SEPARATORS = PyRegex.compile("\\s*,\\s*(?:or\\s+|and\\s+)?|\\s+or\\s+")
    private fun inlineItems(text: String) = items(text, INLINE_SEPARATORS)

    private fun lines(block: String): List<String>? {
        val kept = ArrayList<String>()
        for (line in block.split("\n")) {
            if (PyText.strip(line).isEmpty()) break
            kept.add(line)
        }
        return items(kept.joinToString("\n"), Regex("\n"))
    }

    /** The closed set of labels `prompt` asks to choose from, or null (none, or more than one list). */
    fun extract(prompt: String): List<String>? {
        val found = ArrayList<Pair<Int, List<String>?>>()
        val taken = ArrayList<IntRange>()
        val patterns: List<Pair<Regex, (String) -> List<String>?>> = listOf(
            CUED_LINES to { t: String -> lines(t) }, CUED_INLINE to { t: String -> inlineItems(t) },
            ANSWER_LIST to { t: String -> inlineItems(t) }, SLASHED to { t: String -> items(t, PyRegex.compile("\\s/\\s")) })
        for ((pattern, parse) in patterns) {
            for (match in pattern.findAll(prompt)) {
                val start = match.range.first
                val end = match.range.last + 1
                if (taken.any { r -> end > r.first && r.last >= start }) continue
                taken.add(start until end)
                found.add(Pair(start, parse(match.groupValues[1])))
            }
        }
        val lists = found.sortedBy { it.first }.mapNotNull { it.second }
        return if (lists.size == 1) lists[0] else null
    }

    private fun form(prompt: String): String? {
        val forms = JSON_FORM.findAll(prompt).map { it.value }.toList()
        return if (forms.size == 1 && PLACEHOLDER.findAll(forms[0]).count() == 1) forms[0] else null
    }

    /** The prompt's JSON form with its one placeholder filled, else the option itself. */
    fun answerText(prompt: String, option: String): String = form(prompt)?.let { f -> PLACEHOLDER.replace(f) { option } } ?: option

    /** The answer before the option (the JSON form up to its placeholder), forced before scoring. */
    fun answerPrefix(prompt: String): String = form(prompt)?.let { it.substring(0, it.indexOf('<')) } ?: ""

    /** `margin`: the closest branch's chosen minus runner-up renormalized probability. */
    data class Choice(val index: Int, val probability: Double, val evaluated: Int, val margin: Double)

    /** Greedy walk of the options' token trie, renormalized over the options at each branch. */
    fun choose(continuation: Continuation, options: List<List<Int>>): Choice {
        require(options.isNotEmpty() && options.all { it.isNotEmpty() } && options.toSet().size == options.size) {
            "options must be distinct, non-empty token sequences"
        }
        var live = options.indices.toList()
        var depth = 0
        var probability = 1.0
        var evaluated = 0
        var margin = 1.0
        while (live.size > 1) {
            val ended = live.filter { options[it].size == depth }
            val children = live.filter { options[it].size > depth }.map { options[it][depth] }.toSortedSet().toList()
            if (children.size == 1 && ended.isEmpty()) {
                continuation.append(children)
                evaluated++
                depth++
                continue
            }
            val logprobs = continuation.logprobs()
            val masses = children.map { Math.exp(logprobs[it]) }
            val candidates = if (ended.isNotEmpty()) masses + Math.max(0.0, 1.0 - masses.sum()) else masses
            val total = candidates.sum()
            val shares = candidates.map { if (total > 0) it / total else 1.0 / candidates.size }
            var best = 0
            for (k in shares.indices) if (shares[k] > shares[best]) best = k
            probability *= shares[best]
            var runnerUp = Double.NEGATIVE_INFINITY
            for (k in shares.indices) if (k != best && shares[k] > runnerUp) runnerUp = shares[k]
            margin = Math.min(margin, shares[best] - runnerUp)
            if (best == masses.size) return Choice(ended[0], probability, evaluated, margin)
            val token = children[best]
            live = live.filter { options[it].size > depth && options[it][depth] == token }
            depth++
            if (live.size > 1) {
                continuation.append(listOf(token))
                evaluated++
            }
        }
        return Choice(live[0], probability, evaluated, margin)
    }
}

object RatingDistribution {
    val RATINGS = (1..10).toList()

    /** P(rating 1-10) renormalized over the ratings, one shared first token (e.g. "1" of "10") expanded. */
    fun distribution(continuation: Continuation): Map<Int, Double> {
        val spelled = RATINGS.associateWith { continuation.tokenize(it.toString()) }
        val logprobs = continuation.logprobs()
        val groups = LinkedHashMap<Int, MutableList<Int>>()
        for (r in RATINGS) groups.getOrPut(spelled.getValue(r)[0]) { ArrayList() }.add(r)
        val shared = groups.filter { (_, rs) -> rs.size > 1 || spelled.getValue(rs[0]).size > 1 }.keys.toList()
        require(shared.size <= 1) { "ratings share ${shared.size} first tokens; one can be expanded" }
        val mass = HashMap<Int, Double>()
        for (r in RATINGS) if (spelled.getValue(r)[0] !in shared) mass[r] = Math.exp(logprobs[spelled.getValue(r)[0]])
        if (shared.isNotEmpty()) {
            val first = shared[0]
            val head = Math.exp(logprobs[first])
            continuation.append(listOf(first))
            val after = continuation.logprobs()
            val longer = groups.getValue(first).filter { spelled.getValue(it).size > 1 }
                .associateWith { Math.exp(after[spelled.getValue(it)[1]]) }
            for (r in groups.getValue(first)) mass[r] = head * (longer[r] ?: Math.max(0.0, 1.0 - longer.values.sum()))
        }
        val total = mass.values.sum()
        return if (total <= 0) RATINGS.associateWith { 1.0 / RATINGS.size } else RATINGS.associateWith { mass.getValue(it) / total }
    }

    fun expected(distribution: Map<Int, Double>): Double = distribution.entries.map { it.key * it.value }.sum()
}

/** `trained`: a logistic head over the answer's own features (runtime/confidence/head.py). */
data class TrainedHead(val features: List<String>, val weights: List<Double>, val center: List<Double>,
                       val scale: List<Double>, val bias: Double) {
    init {
        require(features.all { it in FEATURES }) { "confidence_check.head: unknown feature in $features" }
        require(weights.size == features.size && center.size == features.size && scale.size == features.size) {
            "confidence_check.head: features, weights, center and scale must have the same length"
        }
        require(scale.all { it > 0 }) { "confidence_check.head: every scale must be > 0" }
    }

    /** sigmoid(bias + sum weights[i] * (x[features[i]] - center[i]) / scale[i]). */
    fun value(x: Map<String, Double>): Double {
        var z = bias
        for (i in features.indices) z += weights[i] * (x.getValue(features[i]) - center[i]) / scale[i]
        return if (z >= 0) 1.0 / (1.0 + Math.exp(-z)) else Math.exp(z) / (1.0 + Math.exp(z))
    }

    companion object {
        val FEATURES = listOf("options", "option_logprob", "option_margin", "option_count", "token_mean", "token_min",
            "first_margin", "answer_tokens", "prompt_tokens")
        const val LOGPROB_FLOOR = -30.0

        private fun clip(logprob: Double): Double = if (logprob.isNaN()) LOGPROB_FLOOR else Math.max(LOGPROB_FLOOR, logprob)

        private fun zeros(): MutableMap<String, Double> = FEATURES.associateWith { 0.0 }.toMutableMap()

        /** An answer the option walk chose among `count` options after `promptTokens` prompt tokens. */
        fun optionFeatures(probability: Double, margin: Double, count: Int, promptTokens: Int): Map<String, Double> {
            val x = zeros()
            x["options"] = 1.0
            x["option_logprob"] = if (probability > 0) clip(Math.log(probability)) else LOGPROB_FLOOR
            x["option_margin"] = margin
            x["option_count"] = Math.log(count.toDouble())
            x["prompt_tokens"] = Math.log1p(promptTokens.toDouble())
            return x
        }

        /** A generated answer, from its tokens' log-probabilities and margins over the runner-up. */
        fun answerFeatures(logprobs: List<Double>, margins: List<Double>, promptTokens: Int): Map<String, Double> {
            val x = zeros()
            val clipped = logprobs.map { clip(it) }
            x["token_mean"] = if (clipped.isEmpty()) LOGPROB_FLOOR else clipped.sum() / clipped.size
            x["token_min"] = if (clipped.isEmpty()) LOGPROB_FLOOR else clipped.reduce { a, b -> Math.min(a, b) }
            x["first_margin"] = if (margins.isEmpty()) LOGPROB_FLOOR else Math.max(LOGPROB_FLOOR, Math.min(-LOGPROB_FLOOR, margins[0]))
            x["answer_tokens"] = Math.log1p(clipped.size.toDouble())
            x["prompt_tokens"] = Math.log1p(promptTokens.toDouble())
            return x
        }
    }
}
