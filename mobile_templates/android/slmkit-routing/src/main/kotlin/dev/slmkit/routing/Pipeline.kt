package dev.slmkit.routing

/**
 * The routing pipeline (runtime/pipeline.py): router -> tier policy -> tier engine -> confidence check
 * -> escalation, with fallback on any failure. A request is never dropped: when every tier fails
 * the Response carries every reason instead of an exception.
 */
data class Message(val role: String, val content: String)

data class Request(val user: String, val system: String = "", val history: List<Message> = emptyList(),
                   val maxTokens: Int? = null, val id: String = "") {
    /** The last `turns` user messages before `user`, oldest first (runtime/request.py). */
    fun earlierUserTurns(turns: Int): List<String> {
        if (turns <= 0) return emptyList()
        val users = history.filter { it.role == "user" }.map { it.content }
        return users.subList(Math.max(0, users.size - turns), users.size)
    }

    fun messages(): List<Message> =
        (if (system.isNotEmpty()) listOf(Message("system", system)) else emptyList()) + history + Message("user", user)
}

data class Generation(val text: String, val inputTokens: Int, val outputTokens: Int, val latencyMs: Double,
                      val model: String, val simulated: Boolean = false,
                      /** Per generated token, from engines with logits: log-probability, and margin over the runner-up. */
                      val tokenLogprobs: List<Double>? = null, val tokenMargins: List<Double>? = null)

/** A tier that failed (timeout, HTTP error, model missing): the pipeline falls through to the next. */
class TierException(val reason: String) : Exception(reason)

interface TierEngine : AutoCloseable {
    fun generate(messages: List<Message>, maxTokens: Int): Generation
    /** The answer with its tokens' log-probabilities; engines that expose logits override this. */
    fun generateWithLogprobs(messages: List<Message>, maxTokens: Int): Generation = generate(messages, maxTokens)
    /** Runs `block` on the chat prompt evaluated and open for scoring; engines without logits cannot. */
    fun <T> withContinuation(messages: List<Message>, block: (Continuation) -> T): T =
        throw TierException("this engine exposes no logits")
    override fun close() {}
}

interface Router {
    val method: String
    fun decide(request: Request): RouteDecision
}

data class Step(val tier: String, val purpose: String, val ok: Boolean, val latencyMs: Double, val inputTokens: Int = 0,
                val outputTokens: Int = 0, val costUsd: Double = 0.0, val model: String = "", val simulated: Boolean = false,
                val error: String? = null)

class Trace(val requestId: String) {
    var routerInput: Map<String, Any?> = emptyMap()
    var router: RouteDecision? = null
    var policyTier: String? = null
    var policyReason: String = ""
    val steps = ArrayList<Step>()
    val confidence = ArrayList<Map<String, Any?>>()
    val escalations = ArrayList<Map<String, Any?>>()
    val fallbacks = ArrayList<Map<String, Any?>>()
    var finalTier: String? = null
    var latencyMs = 0.0
    val costUsd: Double get() = steps.sumOf { it.costUsd }

    /** The same keys as the Python trace's to_dict(), so simulator and app logs compare directly. */
    fun toMap(): Map<String, Any?> = linkedMapOf(
        "request_id" to requestId, "router_input" to routerInput,
        "router" to router?.let { linkedMapOf("method" to it.method, "label" to it.label, "confidence" to it.confidence,
            "probabilities" to it.probabilities, "raw" to it.raw, "latency_ms" to it.latencyMs)
            .apply { it.conversation?.let { c -> put("conversation", c) } } },
        "policy" to linkedMapOf("tier" to policyTier, "reason" to policyReason),
        "steps" to steps.map { linkedMapOf("tier" to it.tier, "purpose" to it.purpose, "ok" to it.ok, "latency_ms" to it.latencyMs,
            "input_tokens" to it.inputTokens, "output_tokens" to it.outputTokens, "cost_usd" to it.costUsd, "model" to it.model,
            "simulated" to it.simulated, "error" to it.error) },
        "confidence" to confidence, "escalations" to escalations, "fallbacks" to fallbacks,
        "final_tier" to finalTier, "latency_ms" to latencyMs, "cost_usd" to costUsd)
}

data class Response(val text: String, val tier: String?, val trace: Trace, val error: String? = null) {
    val ok: Boolean get() = error == null
}

class Pipeline(val spec: RoutingSpec, router: Router, private val engineFor: (TierSpec) -> TierEngine) : AutoCloseable {
    /** The app's router, reading conversations when truncation.historyTurns > 0 (runtime/router/__init__.py). */
    private val router: Router =
        if (spec.router.truncation.historyTurns > 0 && router !is ConversationRouter) ConversationRouter(router, spec) else router
    private val engines = java.util.concurrent.ConcurrentHashMap<String, TierEngine>()
    @Volatile private var closed = false

    /** Engines load on first use, once even when requests race (computeIfAbsent); one that cannot load fails
     *  like any other tier failure, a native library that does not load (LinkageError) included. After
     *  close() no engine loads again: one that finished loading while close() ran is closed here. */
    private fun engine(tier: String): TierEngine {
        val engine = engines.computeIfAbsent(tier) {
            if (closed) throw TierException(CLOSED)
            try { engineFor(spec.tier(tier)) } catch (e: TierException) { throw e } catch (e: Throwable) {
                throw TierException("cannot load: ${failure(e) ?: throw e}")
            }
        }
        if (closed) {
            if (engines.remove(tier, engine)) engine.close()
            throw TierException(CLOSED)
        }
        return engine
    }

    /** Why a tier failed, for the trace: its TierException's reason, or any other Exception (an engine's bug,
     *  a platform exception such as NetworkOnMainThreadException) or LinkageError (a native library that does
     *  not load: 32-bit devices, a missing .so) by class and message. Other Errors (out of memory) are not
     *  a tier's failure: null, and the caller rethrows. */
    private fun failure(e: Throwable): String? = when (e) {
        is TierException -> e.reason
        is Exception, is LinkageError -> "${e.javaClass.simpleName}: ${e.message}"
        else -> null
    }

    private fun now(): Double = System.nanoTime() / 1e6

    private fun route(request: Request, trace: Trace): String {
        val (system, user) = Prompts.requestRouterInput(request, spec.router.truncation)
        trace.routerInput = linkedMapOf("system" to system, "user" to user, "user_chars" to Prompts.codePoints(request.user))
        val decision = try { router.decide(request) } catch (e: TierException) {
            RouteDecision(null, 0.0, raw = "router failed: ${e.reason}", method = router.method)
        }
        trace.router = decision
        val choice = Policy.chooseTier(decision, spec.policy)
        trace.policyTier = choice.tier
        trace.policyReason = choice.reason
        return choice.tier
    }

    private fun generate(tier: String, purpose: String, messages: List<Message>, maxTokens: Int, trace: Trace,
                         logprobs: Boolean = false): Generation? {
        val start = now()
        return try {
            val g = if (logprobs) engine(tier).generateWithLogprobs(messages, maxTokens) else engine(tier).generate(messages, maxTokens)
            step(tier, purpose, g, trace)
            g
        } catch (e: Throwable) {
            trace.steps.add(Step(tier, purpose, false, now() - start, error = failure(e) ?: throw e))
            null
        }
    }

    private fun step(tier: String, purpose: String, g: Generation, trace: Trace) {
        val t = spec.tier(tier)
        val cost = (g.inputTokens * t.priceInPerMTok + g.outputTokens * t.priceOutPerMTok) / 1e6
        trace.steps.add(Step(tier, purpose, true, g.latencyMs, g.inputTokens, g.outputTokens, cost, g.model, g.simulated))
    }

    /** The method's value for an answer (runtime/confidence/methods.py `score_answer`); may throw TierException. */
    private fun score(tier: String, request: Request, answer: Generation, trace: Trace): Pair<String, Map<String, Any?>> {
        val check = spec.confidenceCheck
        val method = if (check.method == "options") check.fallback else check.method
        when (method) {
            "trained" -> {
                val logprobs = answer.tokenLogprobs ?: throw TierException("the tier returned no token log-probabilities")
                val x = TrainedHead.answerFeatures(logprobs, answer.tokenMargins ?: emptyList(), answer.inputTokens)
                return Pair(method, trainedEntry(x))
            }
            "token_logprob" -> {
                val logprobs = answer.tokenLogprobs ?: throw TierException("the tier returned no token log-probabilities")
                val value = TokenConfidence.confidence(check.feature, logprobs, answer.tokenMargins ?: emptyList())
                return Pair(method, linkedMapOf("value" to value, "feature" to check.feature, "tokens" to logprobs.size))
            }
            "self_rating" -> {
                val prompt = Prompts.ratingPrompt(check.prompt, request.user, answer.text)
                val distribution = engine(tier).withContinuation(listOf(Message("user", prompt))) { RatingDistribution.distribution(it) }
                return Pair(method, linkedMapOf("value" to RatingDistribution.expected(distribution)))
            }
            else -> {
                val prompt = Prompts.ratingPrompt(check.prompt, request.user, answer.text)
                val text = generate(tier, "rating", listOf(Message("user", prompt)), check.maxTokens, trace)?.text ?: ""
                val (rating, parsed) = Confidence.ratingOrDefault(text, check.unparsableRating)
                return Pair(method, linkedMapOf("value" to rating, "text" to text, "parsed" to parsed))
            }
        }
    }

    /** The `trained` head's value on an answer's features, and the features it read. */
    private fun trainedEntry(x: Map<String, Double>): Map<String, Any?> {
        val head = spec.confidenceCheck.head ?: throw IllegalStateException("confidence_check.head is missing")
        return linkedMapOf("value" to head.value(x), "features" to head.features.associateWith { x.getValue(it) })
    }

    /** An answer chosen among a closed label set: what the option walk gives and the trained head reads. */
    private class OptionAnswer(val generation: Generation, val probability: Double, val features: Map<String, Double>)

    /** The option the tier scores best, as the answer, with its probability; null without a closed set. */
    private fun optionAnswer(tier: String, request: Request): OptionAnswer? {
        val options = Options.extract(request.user) ?: return null
        val start = now()
        return engine(tier).withContinuation(request.messages()) { continuation ->
            val spelled = options.map { continuation.tokenize(it) }
            if (spelled.any { it.isEmpty() } || spelled.toSet().size != spelled.size) return@withContinuation null
            val prefix = Options.answerPrefix(request.user)
            if (prefix.isNotEmpty()) continuation.append(continuation.tokenize(prefix))
            val choice = Options.choose(continuation, spelled)
            val text = Options.answerText(request.user, options[choice.index])
            OptionAnswer(Generation(text, continuation.promptTokens, continuation.tokenize(text).size, now() - start,
                spec.tier(tier).model ?: tier), choice.probability,
                TrainedHead.optionFeatures(choice.probability, choice.margin, options.size, continuation.promptTokens))
        }
    }

    /** The tier's answer and whether its confidence check says escalate; a failing check escalates. */
    private fun checkedAnswer(tier: String, request: Request, trace: Trace): Pair<Generation?, Boolean> {
        val check = spec.confidenceCheck
        val maxTokens = answerMaxTokens(request, spec.tier(tier))
        var threshold = check.threshold
        var generation: Generation? = null
        var entry: Map<String, Any?>? = null
        var method = check.method
        if (check.answersFromOptions()) {
            val start = now()
            val option = try { optionAnswer(tier, request) } catch (e: Throwable) {
                trace.steps.add(Step(tier, "answer", false, now() - start, error = failure(e) ?: throw e))
                return Pair(null, false)
            }
            if (option != null) {
                generation = option.generation
                step(tier, "answer", option.generation, trace)
                entry = if (check.method == "options") linkedMapOf("value" to option.probability) else trainedEntry(option.features)
            } else if (check.method == "options") {
                threshold = check.fallbackThreshold ?: threshold
            }
        }
        if (generation == null) {
            generation = generate(tier, "answer", request.messages(), maxTokens, trace, check.needsTokenLogprobs())
                ?: return Pair(null, false)
        }
        var error: String? = null
        if (entry == null) {
            try {
                val (name, scored) = score(tier, request, generation, trace)
                method = name
                entry = scored
            } catch (e: Throwable) {
                method = if (check.method == "options") check.fallback else check.method
                error = failure(e) ?: throw e
                entry = linkedMapOf("value" to (if (method == "sampled_rating") check.unparsableRating else -1.0), "parsed" to false)
            }
        }
        val scored: Map<String, Any?> = requireNotNull(entry) { "every path above sets the confidence entry" }
        val value = scored["value"] as Double
        val escalate = value < threshold
        trace.confidence.add(linkedMapOf<String, Any?>("tier" to tier, "method" to method, "value" to value,
            "threshold" to threshold, "escalate" to escalate, "error" to error) + scored.filterKeys { it != "value" })
        return Pair(generation, escalate)
    }

    /**
     * Route (or use `forceTier`, which skips routing and the confidence check: the tier the caller named
     * answers itself, falling through on failure only), answer, check confidence, escalate or fall through.
     * Never throws for a tier: an unknown `forceTier` or a request no tier could answer gives a Response with `error`.
     */
    /** The answer length a tier is asked for: the request's, unless absent or not positive, then the tier's own
     *  (runtime/pipeline.py `answer_max_tokens`; pinned by vectors/pipeline.jsonl). */
    fun answerMaxTokens(request: Request, tier: TierSpec): Int = request.maxTokens?.takeIf { it > 0 } ?: tier.maxTokens

    fun handle(request: Request, forceTier: String? = null): Response {
        val start = now()
        val trace = Trace(request.id)
        if (closed) return Response("", null, trace, CLOSED)
        if (forceTier != null && spec.tiers.none { it.name == forceTier }) return Response("", null, trace, "unknown tier '$forceTier'")
        var tier: String? = if (forceTier != null) {
            trace.policyTier = forceTier
            trace.policyReason = "tier named by the request"
            forceTier
        } else route(request, trace)
        val tried = HashSet<String>()
        var answer: Pair<String, String>? = null
        while (tier != null && tier !in tried) {
            if (Thread.currentThread().isInterrupted) {  // the caller cancelled: no further tier is tried
                trace.latencyMs = now() - start
                return Response("", null, trace, "cancelled")
            }
            tried.add(tier)
            val t = spec.tier(tier)
            var escalate = false
            val generation = if (forceTier == null && tier in spec.confidenceCheck.tiers) {
                val (g, e) = checkedAnswer(tier, request, trace)
                escalate = e
                g
            } else generate(tier, "answer", request.messages(), answerMaxTokens(request, t), trace)
            if (generation == null) {
                val next = (listOf(tier) + spec.fallbacks(tier)).firstOrNull { it !in tried }
                trace.fallbacks.add(linkedMapOf("from" to tier, "to" to next, "reason" to trace.steps.last().error))
                tier = next
                continue
            }
            answer = Pair(tier, generation.text)
            if (escalate) {
                val next = spec.nextTier(tier)
                if (next != null && next !in tried) {
                    val check = trace.confidence.last()
                    trace.escalations.add(linkedMapOf("from" to tier, "to" to next, "method" to check["method"],
                        "confidence" to check["value"]))
                    tier = next
                    continue
                }
            }
            break
        }
        trace.latencyMs = now() - start
        if (answer == null) {
            val reasons = trace.fallbacks.joinToString("; ") { "${it["from"]}: ${it["reason"]}" }
            return Response("", null, trace, "every tier failed ($reasons)")
        }
        trace.finalTier = answer.first
        return Response(answer.second, answer.first, trace)
    }

    /** Closes every loaded engine (each stops its running generations first) and refuses later requests: a
     *  closed pipeline answers with an error Response and never loads an engine again. Idempotent. */
    override fun close() {
        closed = true
        for (tier in engines.keys) engines.remove(tier)?.close()   // this map's iterators tolerate concurrent removal
    }

    private companion object {
        const val CLOSED = "the pipeline is closed"
    }
}
