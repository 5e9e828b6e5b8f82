package dev.slmkit.routing

import java.io.File

/**
 * Runs the shared golden vectors (the .jsonl files of runtime/vectors) through this port. The Python runtime,
 * this Kotlin core and the Swift package run the same files; a port is correct when every case
 * gives the expected value. `main` prints one line per failure and exits 1 if any.
 */
object GoldenVectors {
    data class Outcome(val file: String, val name: String, val passed: Boolean, val detail: String)

    val FILES = listOf("router_output", "rating", "policy", "label_probabilities", "prompts", "features", "options",
        "option_choice", "rating_distribution", "token_confidence", "trained_head", "conversation", "grouped_probabilities", "date_slots",
        "router_head", "pipeline")
    /** Written by `slmkit package`: the model's chat template flattened (vs Jinja's rendering), and the
     *  Python router's decisions with the bundle's head (paths relative to the vectors folder's parent). */
    val BUNDLE_FILES = listOf("chat_format", "router_decisions")
    private val heads = HashMap<String, LinearHead>()
    private var root = File(".")
    private var routerTruncation = Truncation()
    private var routerTemperature = 1.0
    private var routerLabels: List<String>? = null

    private fun close(a: Double?, b: Double?, tolerance: Double = 1e-9): Boolean =
        if (a == null || b == null) a == b else Math.abs(a - b) <= tolerance * Math.max(1.0, Math.abs(b))

    fun check(file: String, row: Map<String, Any?>): String? {
        val expected = row["expected"]
        when (file) {
            "router_output" -> {
                val parsed = RouterParse.parse(row["text"].str(), row["labels"].list().map { it.str() })
                if (expected == null) return if (parsed == null) null else "expected unparsable, got $parsed"
                val e = expected.obj()
                if (parsed == null) return "expected ${e["label"]}, got unparsable"
                if (parsed.label != e["label"]) return "label ${parsed.label} != ${e["label"]}"
                return if (close(parsed.confidence, e["confidence"] as Double?)) null
                else "confidence ${parsed.confidence} != ${e["confidence"]}"
            }
            "rating" -> {
                val e = expected.obj()
                val (rating, parsed) = Confidence.ratingOrDefault(row["text"].str(), row["unparsable_rating"].num())
                val escalate = Confidence.shouldEscalate(rating, row["threshold"].num())
                return if (rating == e["rating"].num() && parsed == e["parsed"] && escalate == e["escalate"]) null
                else "got rating $rating parsed $parsed escalate $escalate, expected $e"
            }
            "policy" -> {
                val d = row["decision"].obj()
                val decision = RouteDecision(d["label"] as String?, d["confidence"].num())
                val tier = Policy.chooseTier(decision, PolicySpec.from(row["policy"])).tier
                return if (tier == expected.obj()["tier"]) null else "tier $tier != ${expected.obj()["tier"]}"
            }
            "label_probabilities" -> {
                val labels = row["labels"].list().map { it.str() }
                val bias = row["bias"].obj()
                val logits = row["logits"].list().mapIndexed { i, x ->
                    (if (x == "-inf") Double.NEGATIVE_INFINITY else x.num()) + ((bias[labels[i]] as Double?) ?: 0.0)
                }
                val decision = Decisions.fromLogits(labels, logits, row["temperature"].num())
                val e = expected.obj()
                if (decision.label != e["label"]) return "label ${decision.label} != ${e["label"]}"
                if (!close(decision.confidence, e["confidence"].num())) return "confidence ${decision.confidence} != ${e["confidence"]}"
                for ((label, p) in e["probabilities"].obj()) {
                    if (!close(decision.probabilities[label], p.num())) return "p($label) ${decision.probabilities[label]} != $p"
                }
                return null
            }
            "grouped_probabilities" -> {
                val labels = row["labels"].list().map { it.str() }
                val logits = row["logits"].list().map { x -> if (x == "-inf") Double.NEGATIVE_INFINITY else x.num() }
                val groups = row["groups"].obj().mapValues { it.value.str() }
                val decision = Decisions.fromGroupedLogits(labels, row["classes"].list().map { it.str() }, logits, groups,
                    row["temperature"].num())
                val e = expected.obj()
                if (decision.label != e["label"]) return "label ${decision.label} != ${e["label"]}"
                if (decision.raw.split(" ")[0] != e["top_class"]) return "top class ${decision.raw} != ${e["top_class"]}"
                if (!close(decision.confidence, e["confidence"].num())) return "confidence ${decision.confidence} != ${e["confidence"]}"
                for ((label, p) in e["probabilities"].obj()) {
                    if (!close(decision.probabilities[label], p.num())) return "p($label) ${decision.probabilities[label]} != $p"
                }
                return null
            }
            "prompts" -> {
                val text = if (row["kind"] == "router") Prompts.routerPrompt(row["template"].str(), row["system"].str(),
                    row["user"].str(), Truncation.from(row["truncation"]), (row["earlier"] ?: emptyList<Any?>()).list().map { it.str() })
                else Prompts.ratingPrompt(row["template"].str(), row["question"].str(), row["answer"].str())
                return if (text == expected.str()) null else "prompt differs: ${toJson(text)}"
            }
            "features" -> {
                val e = expected.obj()
                if ("fnv1a_input" in row) {
                    val h = Features.fnv1a(row["fnv1a_input"].str())
                    return if (h.toDouble() == e["fnv1a"].num()) null else "fnv1a $h != ${e["fnv1a"]}"
                }
                val earlier = (row["earlier"] ?: emptyList<Any?>()).list().map { it.str() }
                val (system, user) = Prompts.routerInput(row["system"].str(), row["user"].str(), Truncation.from(row["truncation"]), earlier)
                val text = Features.classifierText(system, user)
                if (text != e["text"]) return "text ${toJson(text)} != ${toJson(e["text"])}"
                val count = Features.featureStrings(text).size
                if (count.toDouble() != e["feature_count"].num()) return "feature_count $count != ${e["feature_count"]}"
                val hashed = Features.hashed(text, row["buckets"].num().toInt())
                val indices = e["indices"].list().map { it.num().toInt() }
                if (hashed.keys.toList() != indices) return "indices ${hashed.keys} != $indices"
                if (!hashed.values.all { close(it, e["value"].num(), 1e-6) }) return "value ${hashed.values.firstOrNull()} != ${e["value"]}"
                val dense = Features.dense(row["system"].str(), (earlier + row["user"].str()).joinToString("\n"))
                val want = e["dense"].list().map { it.num() }
                return if (dense.size == want.size && dense.zip(want).all { (a, b) -> close(a, b, 1e-6) }) null else "dense $dense != $want"
            }
            "conversation" -> {
                val e = expected.obj()
                if (row["kind"] == "earlier") {
                    val history = row["history"].list().map { val m = it.obj(); Message(m["role"].str(), m["content"].str()) }
                    val got = Request(row["user"].str(), history = history).earlierUserTurns(row["history_turns"].num().toInt())
                    val want = e["earlier"].list().map { it.str() }
                    return if (got == want) null else "earlier $got != $want"
                }
                val policy = PolicySpec.from(row["policy"])
                fun decision(key: String): RouteDecision { val d = row[key].obj(); return RouteDecision(d["label"] as String?, d["confidence"].num()) }
                val (chosen, which) = Conversation.costlier(decision("last_message"), decision("conversation"), policy,
                    row["tiers"].list().map { it.str() })
                val tier = Policy.chooseTier(chosen, policy).tier
                return if (which == e["chosen"] && tier == e["tier"]) null else "chose $which ($tier), expected $e"
            }
            "router_decisions" -> {
                val headPath = row["head"].str()
                val head = heads.getOrPut(headPath) {
                    val header = File(root, headPath)
                    LinearHead.load(header.readText(), File(header.parentFile, header.nameWithoutExtension + ".f16").readBytes())
                }
                val spec = RouterSpec("classifier", routerLabels ?: head.labels, headPath, routerTruncation, routerTemperature,
                    emptyMap(), 0.5)
                val decision = ClassifierRouter(spec, head).decide(Request(row["user"].str(), row["system"].str()))
                val e = expected.obj()
                if (decision.label != e["label"]) return "label ${decision.label} != ${e["label"]}"
                for ((label, p) in e["probabilities"].obj()) {
                    if (!close(decision.probabilities[label], p.num(), 1e-6)) return "p($label) ${decision.probabilities[label]} != $p"
                }
                return null
            }
            "options" -> {
                val e = expected.obj()
                val prompt = row["prompt"].str()
                val options = Options.extract(prompt)
                val want = (e["options"] as List<*>?)?.map { it.str() }
                if (options != want) return "options $options != $want"
                if (Options.answerPrefix(prompt) != e["answer_prefix"]) return "prefix ${toJson(Options.answerPrefix(prompt))}"
                for ((option, text) in e["answer_text"].obj()) {
                    if (Options.answerText(prompt, option) != text) return "answer for $option: ${toJson(Options.answerText(prompt, option))}"
                }
                return null
            }
            "option_choice" -> {
                val continuation = VectorContinuation(row)
                val choice = Options.choose(continuation, row["options"].list().map { o -> o.list().map { it.num().toInt() } })
                val e = expected.obj()
                val appended = e["appended"].list().map { it.num().toInt() }
                if (choice.index != e["index"].num().toInt() || continuation.appended != appended) {
                    return "index ${choice.index} appended ${continuation.appended}, expected $e"
                }
                if (!close(choice.margin, e["margin"].num())) return "margin ${choice.margin} != ${e["margin"]}"
                return if (close(choice.probability, e["probability"].num())) null else "probability ${choice.probability} != ${e["probability"]}"
            }
            "trained_head" -> {
                val x = if (row["kind"] == "option") {
                    TrainedHead.optionFeatures(row["probability"].num(), row["margin"].num(), row["count"].num().toInt(),
                        row["prompt_tokens"].num().toInt())
                } else {
                    TrainedHead.answerFeatures(row["logprobs"].list().map { it.num() }, row["margins"].list().map { it.num() },
                        row["prompt_tokens"].num().toInt())
                }
                val e = expected.obj()
                for ((name, want) in e["features"].obj()) {
                    if (!close(x[name], want.num())) return "feature $name ${x[name]} != $want"
                }
                val value = trainedHead(row["head"]).value(x)
                return if (close(value, e["value"].num())) null else "value $value != ${e["value"]}"
            }
            "rating_distribution" -> {
                val distribution = RatingDistribution.distribution(VectorContinuation(row))
                val e = expected.obj()
                for ((rating, p) in e["distribution"].obj()) {
                    if (!close(distribution[rating.toInt()], p.num())) return "p($rating) ${distribution[rating.toInt()]} != $p"
                }
                val mean = RatingDistribution.expected(distribution)
                return if (close(mean, e["expected_rating"].num())) null else "expected rating $mean != ${e["expected_rating"]}"
            }
            "token_confidence" -> {
                if ("feature" in row) {
                    val value = TokenConfidence.confidence(row["feature"].str(), row["logprobs"].list().map { it.num() },
                        row["margins"].list().map { it.num() })
                    return if (close(value, expected.num())) null else "confidence $value != $expected"
                }
                val logits = row["logits"].list().map { it.num().toFloat().toDouble() }.toDoubleArray()
                val (logprob, margin) = TokenConfidence.tokenStats(logits, row["token"].num().toInt())
                val e = expected.obj()
                return if (close(logprob, e["logprob"].num()) && close(margin, e["margin"].num())) null
                else "stats $logprob $margin != $e"
            }
            "date_slots" -> {
                val n = row["now"].obj("now")
                val now = ClockTime(n["year"].num().toInt(), n["month"].num().toInt(), n["day"].num().toInt(),
                    n["hour"].num().toInt(), n["minute"].num().toInt(), n["second"].num().toInt())
                val text = DateSlots.fill(row["text"].str(), now)
                return if (text == expected.str()) null else "filled ${toJson(text)}"
            }
            "chat_format" -> {
                val messages = row["messages"].list().map { val m = it.obj(); Message(m["role"].str(), m["content"].str()) }
                val n = row["now"].obj("now")
                val now = ClockTime(n["year"].num().toInt(), n["month"].num().toInt(), n["day"].num().toInt(),
                    n["hour"].num().toInt(), n["minute"].num().toInt(), n["second"].num().toInt())
                val text = ChatFormat.from(row["format"]).render(messages, now)
                return if (text == expected.str()) null else "chat prompt differs: ${toJson(text)}"
            }
            "router_head" -> {
                val blob = java.util.Base64.getDecoder().decode(row["weights_base64"].str())
                val e = expected.obj()
                val head = try { LinearHead.load(row["header_json"].str(), blob) } catch (ex: JsonException) {
                    return if (e["error"] == true) null else "head refused: ${ex.message}"
                }
                if (e["error"] == true) return "head accepted"
                val input = row["input"].obj()
                val sparse = input["sparse"].obj().entries.associate { (k, v) -> k.toInt() to v.num() }
                val logits = head.logits(sparse, input["dense"].list().map { it.num() })
                val want = e["logits"].list().map { it.num() }
                return if (logits.size == want.size && logits.zip(want).all { (a, b) -> close(a, b, 1e-6) }) null else "logits $logits"
            }
            "pipeline" -> return checkPipeline(row)
        }
        return "unknown vector file $file"
    }

    /** vectors/pipeline.jsonl's engine: each call answers the script's next output (10 tokens in, 2 out), or
     *  every call fails with `fail` (TierException) or `raise` (an Error from native code, as a missing or
     *  crashing JNI library throws); calls are logged as "tier maxTokens". */
    class ScriptedEngine(private val tier: String, script: Any?, private val log: MutableList<String>) : TierEngine {
        private val outputs = ArrayDeque((script as? List<*>)?.map { it.str() } ?: emptyList())
        private val failure = if (script == null) "no engine" else (script as? Map<*, *>)?.get("fail") as String?
        private val unexpected = (script as? Map<*, *>)?.get("raise") as String?

        override fun generate(messages: List<Message>, maxTokens: Int): Generation {
            log.add("$tier $maxTokens")
            if (unexpected != null) throw UnsatisfiedLinkError(unexpected)
            if (failure != null) throw TierException(failure)
            if (outputs.isEmpty()) throw TierException("script exhausted")
            return Generation(outputs.removeFirst(), 10, 2, 1.0, tier)
        }
    }

    /** The whole pipeline (policy, confidence check, escalation, fallback, answer length, a forced tier). */
    private fun checkPipeline(row: Map<String, Any?>): String? {
        val spec = RoutingSpec.parse(toJson(row["spec"]))
        val d = row["decision"].obj()
        val decision = RouteDecision(d["label"] as String?, d["confidence"].num())
        val router = object : Router {
            override val method = "fixed"
            override fun decide(request: Request) = decision
        }
        val scripts = row["engines"].obj()
        val calls = ArrayList<String>()
        val pipeline = Pipeline(spec, router) { tier ->
            ((scripts[tier.name] as? Map<*, *>)?.get("load") as String?)?.let { throw UnsatisfiedLinkError(it) }
            ScriptedEngine(tier.name, scripts[tier.name], calls)
        }
        val r = row["request"].obj()
        val response = pipeline.handle(Request(r["user"].str(), maxTokens = (r["max_tokens"] as Double?)?.toInt()), r["force_tier"] as String?)
        val e = row["expected"].obj()
        (e["error"] as String?)?.let { return if (response.error?.startsWith(it) == true) null else "error ${response.error}" }
        if (response.error != null) return "failed: ${response.error}"
        if (response.tier != e["tier"] || response.text != e["text"]) return "answered ${response.tier}: ${response.text}"
        val steps = response.trace.steps.map { "${it.tier} ${it.purpose} ${it.ok}" }
        if (steps != e["steps"].list().map { val s = it.list(); "${s[0]} ${s[1]} ${s[2]}" }) return "steps $steps"
        if (calls != e["calls"].list().map { val c = it.list(); "${c[0]} ${c[1].num().toInt()}" }) return "calls $calls"
        val escalations = response.trace.escalations.map { "${it["from"]}>${it["to"]}" }
        if (escalations != e["escalations"].list().map { val x = it.list(); "${x[0]}>${x[1]}" }) return "escalations $escalations"
        val fallbacks = response.trace.fallbacks.map { "${it["from"]}>${it["to"]}" }
        if (fallbacks != e["fallbacks"].list().map { val x = it.list(); "${x[0]}>${x[1]}" }) return "fallbacks $fallbacks"
        return null
    }

    /** The scripted engine of the option_choice and rating_distribution vectors (see vectors/README.md). */
    class VectorContinuation(private val row: Map<String, Any?>) : Continuation {
        override val promptTokens = 0
        val appended = ArrayList<Int>()

        override fun tokenize(text: String): List<Int> = row["spelled"].obj()[text].list().map { it.num().toInt() }

        override fun append(tokens: List<Int>) { appended.addAll(tokens) }

        override fun logprobs(): DoubleArray {
            val size = row["vocab_size"].num().toInt()
            val step = row["next"].list().map { it.obj() }.firstOrNull { n -> n["after"].list().map { it.num().toInt() } == appended }
            val named = step?.get("probabilities")?.obj()?.mapKeys { it.key.toInt() }?.mapValues { it.value.num() } ?: emptyMap()
            val rest = (1.0 - named.values.sum()) / (size - named.size)
            return DoubleArray(size) { Math.log(named[it] ?: rest) }
        }
    }

    fun run(folder: File): List<Outcome> {
        val outcomes = ArrayList<Outcome>()
        root = folder.absoluteFile.parentFile
        val spec = File(root, "routing.json")
        if (spec.isFile) RoutingSpec.parse(spec.readText()).router.let {
            routerTruncation = it.truncation; routerTemperature = it.temperature; routerLabels = it.labels
        }
        for (file in FILES + BUNDLE_FILES) {
            val path = File(folder, "$file.jsonl")
            if (file in BUNDLE_FILES && !path.isFile) continue
            if (!path.isFile) { outcomes.add(Outcome(file, "(file)", false, "missing $path")); continue }
            path.readLines(Charsets.UTF_8).filter { it.isNotBlank() }.forEach { line ->
                val row = Json.parse(line).obj("vector")
                val detail = try { check(file, row) } catch (e: Exception) { "${e.javaClass.simpleName}: ${e.message}" }
                outcomes.add(Outcome(file, row["name"].str(), detail == null, detail ?: ""))
            }
        }
        return outcomes
    }

    @JvmStatic
    fun main(args: Array<String>) {
        val folder = File(if (args.isNotEmpty()) args[0] else "vectors")
        val outcomes = run(folder)
        val failed = outcomes.filter { !it.passed }
        for (f in failed) println("FAIL ${f.file} ${toJson(f.name)}: ${f.detail}")
        for (file in FILES + BUNDLE_FILES) {
            val mine = outcomes.filter { it.file == file }
            println("$file: ${mine.count { it.passed }}/${mine.size} passed")
        }
        println("TOTAL ${outcomes.count { it.passed }}/${outcomes.size} passed")
        if (failed.isNotEmpty() || outcomes.isEmpty()) System.exit(1)
    }
}
