package dev.slmkit.routing

/**
 * The routing pipeline (runtime/pipeline.py): router -> tier policy -> tier engine -> self-rating
 * -> escalation, with fallback on any failure. A request is never dropped: when every tier fails
 * the Response carries every reason instead of an exception.
 */
data class Message(val role: String, val content: String)

data class Request(val user: String, val system: String = "", val history: List<Message> = emptyList(),
                   val maxTokens: Int? = null, val id: String = "") {
    fun messages(): List<Message> =
        (if (system.isNotEmpty()) listOf(Message("system", system)) else emptyList()) + history + Message("user", user)
}

data class Generation(val text: String, val inputTokens: Int, val outputTokens: Int, val latencyMs: Double,
                      val model: String, val simulated: Boolean = false)

/** A tier that failed (timeout, HTTP error, model missing): the pipeline falls through to the next. */
class TierException(val reason: String) : Exception(reason)

interface TierEngine {
    fun generate(messages: List<Message>, maxTokens: Int): Generation
    fun close() {}
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
    val ratings = ArrayList<Map<String, Any?>>()
    val escalations = ArrayList<Map<String, Any?>>()
    val fallbacks = ArrayList<Map<String, Any?>>()
    var finalTier: String? = null
    var latencyMs = 0.0
    val costUsd: Double get() = steps.sumByDouble { it.costUsd }

    /** The same keys as the Python trace's to_dict(), so simulator and app logs compare directly. */
    fun toMap(): Map<String, Any?> = linkedMapOf(
        "request_id" to requestId, "router_input" to routerInput,
        "router" to router?.let { linkedMapOf("method" to it.method, "label" to it.label, "confidence" to it.confidence,
            "probabilities" to it.probabilities, "raw" to it.raw, "latency_ms" to it.latencyMs) },
        "policy" to linkedMapOf("tier" to policyTier, "reason" to policyReason),
        "steps" to steps.map { linkedMapOf("tier" to it.tier, "purpose" to it.purpose, "ok" to it.ok, "latency_ms" to it.latencyMs,
            "input_tokens" to it.inputTokens, "output_tokens" to it.outputTokens, "cost_usd" to it.costUsd, "model" to it.model,
            "simulated" to it.simulated, "error" to it.error) },
        "ratings" to ratings, "escalations" to escalations, "fallbacks" to fallbacks,
        "final_tier" to finalTier, "latency_ms" to latencyMs, "cost_usd" to costUsd)
}

data class Response(val text: String, val tier: String?, val trace: Trace, val error: String? = null) {
    val ok: Boolean get() = error == null
}

class Pipeline(val spec: RoutingSpec, private val router: Router, private val engineFor: (TierSpec) -> TierEngine) {
    private val engines = HashMap<String, TierEngine>()

    /** Engines load on first use; one that cannot load fails like any other tier failure. */
    private fun engine(tier: String): TierEngine = engines.getOrPut(tier) {
        try { engineFor(spec.tier(tier)) } catch (e: TierException) { throw e } catch (e: Exception) {
            throw TierException("cannot load: ${e.message}")
        }
    }

    private fun now(): Double = System.nanoTime() / 1e6

    private fun route(request: Request, trace: Trace): String {
        val (system, user) = Prompts.routerInput(request.system, request.user, spec.router.truncation)
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

    private fun generate(tier: String, purpose: String, messages: List<Message>, maxTokens: Int, trace: Trace): Generation? {
        val start = now()
        return try {
            val g = engine(tier).generate(messages, maxTokens)
            val t = spec.tier(tier)
            val cost = (g.inputTokens * t.priceInPerMTok + g.outputTokens * t.priceOutPerMTok) / 1e6
            trace.steps.add(Step(tier, purpose, true, g.latencyMs, g.inputTokens, g.outputTokens, cost, g.model, g.simulated))
            g
        } catch (e: TierException) {
            trace.steps.add(Step(tier, purpose, false, now() - start, error = e.reason))
            null
        }
    }

    /** Ask the tier to rate its own answer; true means escalate. */
    private fun rate(tier: String, request: Request, answer: String, trace: Trace): Boolean {
        val check = spec.confidenceCheck
        val prompt = Prompts.ratingPrompt(check.prompt, request.user, answer)
        val text = generate(tier, "rating", listOf(Message("user", prompt)), check.maxTokens, trace)?.text ?: ""
        val (rating, parsed) = Confidence.ratingOrDefault(text, check.unparsableRating)
        val escalate = Confidence.shouldEscalate(rating, check.threshold)
        trace.ratings.add(linkedMapOf("tier" to tier, "text" to text, "rating" to rating, "parsed" to parsed, "escalate" to escalate))
        return escalate
    }

    fun handle(request: Request, forceTier: String? = null): Response {
        val start = now()
        val trace = Trace(request.id)
        var tier: String? = if (forceTier != null) {
            spec.tier(forceTier)
            trace.policyTier = forceTier
            trace.policyReason = "tier named by the request"
            forceTier
        } else route(request, trace)
        val tried = HashSet<String>()
        var answer: Pair<String, String>? = null
        while (tier != null && tier !in tried) {
            tried.add(tier)
            val t = spec.tier(tier)
            val generation = generate(tier, "answer", request.messages(), request.maxTokens ?: t.maxTokens, trace)
            if (generation == null) {
                val next = (listOf(tier) + spec.fallbacks(tier)).firstOrNull { it !in tried }
                trace.fallbacks.add(linkedMapOf("from" to tier, "to" to next, "reason" to trace.steps.last().error))
                tier = next
                continue
            }
            answer = Pair(tier, generation.text)
            if (tier in spec.confidenceCheck.tiers && rate(tier, request, generation.text, trace)) {
                val next = spec.nextTier(tier)
                if (next != null && next !in tried) {
                    trace.escalations.add(linkedMapOf("from" to tier, "to" to next, "rating" to trace.ratings.last()["rating"]))
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

    fun close() {
        engines.values.forEach { it.close() }
        engines.clear()
    }
}
