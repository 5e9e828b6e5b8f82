package dev.slmkit.routing

/** routing.json, version 1: the same contract as the Python runtime (runtime/spec.py). */
/** How much of a request the router reads (runtime/spec.py Truncation); historyTurns > 0 routes conversations. */
data class Truncation(val systemChars: Int = 200, val userChars: Int = 300, val userTailChars: Int = 0,
                      val historyTurns: Int = 0, val historyChars: Int = 200) {
    companion object {
        fun from(json: Any?): Truncation {
            val o = json.obj("truncation")
            return Truncation((o["system_chars"] ?: 200.0).num().toInt(), (o["user_chars"] ?: 300.0).num().toInt(),
                (o["user_tail_chars"] ?: 0.0).num().toInt(), (o["history_turns"] ?: 0.0).num().toInt(),
                (o["history_chars"] ?: 200.0).num().toInt())
        }
    }
}

data class Route(val label: String, val tier: String, val minConfidence: Double)

data class PolicySpec(val routes: List<Route>, val lowConfidenceTier: String, val unparsedTier: String) {
    companion object {
        fun from(json: Any?): PolicySpec {
            val o = json.obj("policy")
            val routes = o["routes"].list("policy.routes").map {
                val r = it.obj("route")
                Route(r["label"].str("route.label"), r["tier"].str("route.tier"), (r["min_confidence"] ?: 0.8).num())
            }
            return PolicySpec(routes, o["low_confidence_tier"].str("policy.low_confidence_tier"),
                o["unparsed_tier"].str("policy.unparsed_tier"))
        }
    }
}

data class RouterSpec(
    val method: String, val labels: List<String>, val weights: String?, val truncation: Truncation,
    val temperature: Double, val bias: Map<String, Double>, val defaultConfidence: Double
)

/** confidence_check (runtime/spec.py): the method and its threshold; `options` falls back to `fallback`. */
data class ConfidenceCheck(val tiers: List<String>, val method: String, val threshold: Double, val feature: String,
                           val fallback: String, val fallbackThreshold: Double?, val unparsableRating: Double,
                           val maxTokens: Int, val prompt: String, val head: TrainedHead? = null) {
    init {
        require(method != "trained" || head != null) { "confidence_check: method trained needs `head`" }
    }
    fun methods(): List<String> = if (method == "options") listOf(method, fallback) else listOf(method)
    /** Requests with a closed label set are answered by the option walk. */
    fun answersFromOptions(): Boolean = method == "options" || method == "trained"
    fun needsTokenLogprobs(): Boolean = methods().any { it == "token_logprob" || it == "trained" }
}

data class TierSpec(
    val name: String, val backend: String, val model: String?, val onDevice: Boolean, val baseUrl: String?,
    val apiKeyEnv: String?, val priceInPerMTok: Double, val priceOutPerMTok: Double, val contextTokens: Int,
    val maxTokens: Int, val timeoutS: Double, val fallback: List<String>?
)

class RoutingSpec(val name: String, val router: RouterSpec, val policy: PolicySpec, val confidenceCheck: ConfidenceCheck,
                  val tiers: List<TierSpec>) {
    fun tier(name: String): TierSpec = tiers.firstOrNull { it.name == name } ?: throw IllegalArgumentException("unknown tier $name")

    /** Its own list, else every later tier, then the earlier ones nearest first. */
    fun fallbacks(name: String): List<String> {
        tier(name).fallback?.let { return it }
        val names = tiers.map { it.name }
        val index = names.indexOf(name)
        return names.subList(index + 1, names.size) + names.subList(0, index).reversed()
    }

    /** Escalation target after a low self-rating: the next tier down the list. */
    fun nextTier(name: String): String? {
        val names = tiers.map { it.name }
        val index = names.indexOf(name)
        return if (index + 1 < names.size) names[index + 1] else null
    }

    companion object {
        fun parse(text: String): RoutingSpec {
            val o = Json.parse(text).obj("routing.json")
            val version = (o["version"] ?: 0.0).num("version")
            if (version != 1.0) throw JsonException("routing.json version $version; this port reads version 1")
            val r = o["router"].obj("router")
            val router = RouterSpec(
                r["method"].str("router.method"), r["labels"].list("router.labels").map { it.str() }, r["weights"] as String?,
                Truncation.from(r["truncation"] ?: emptyMap<String, Any?>()), (r["temperature"] ?: 1.0).num(),
                (r["bias"] ?: emptyMap<String, Any?>()).obj("router.bias").mapValues { it.value.num() },
                (r["default_confidence"] ?: 0.5).num()
            )
            val c = o["confidence_check"].obj("confidence_check")
            val check = ConfidenceCheck(c["tiers"].list().map { it.str() }, (c["method"] ?: "sampled_rating").str("confidence_check.method"),
                (c["threshold"] ?: 7.0).num(), (c["feature"] ?: "mean").str("confidence_check.feature"),
                (c["fallback"] ?: "token_logprob").str("confidence_check.fallback"), (c["fallback_threshold"] as Double?),
                (c["unparsable_rating"] ?: 5.0).num(), (c["max_tokens"] ?: 8.0).num().toInt(), c["prompt"].str("confidence_check.prompt"),
                c["head"]?.let { trainedHead(it) })
            val tiers = o["tiers"].list("tiers").map {
                val t = it.obj("tier")
                TierSpec(t["name"].str("tier.name"), t["backend"].str("tier.backend"), t["model"] as String?,
                    t["on_device"] == true, t["base_url"] as String?, t["api_key_env"] as String?,
                    (t["price_in_per_mtok"] ?: 0.0).num(), (t["price_out_per_mtok"] ?: 0.0).num(),
                    (t["context_tokens"] ?: 4096.0).num().toInt(), (t["max_tokens"] ?: 512.0).num().toInt(),
                    (t["timeout_s"] ?: 60.0).num(), (t["fallback"] as List<*>?)?.map { f -> f.str() })
            }
            return RoutingSpec((o["name"] ?: "").str(), router, PolicySpec.from(o["policy"]), check, tiers)
        }
    }
}

/** confidence_check.head, as runtime/spec.py `TrainedHead` (written by `slmkit confidence train`). */
fun trainedHead(value: Any?): TrainedHead {
    val h = value.obj("confidence_check.head")
    fun numbers(key: String) = h[key].list("confidence_check.head.$key").map { it.num("confidence_check.head.$key") }
    try {
        return TrainedHead(h["features"].list("confidence_check.head.features").map { it.str() }, numbers("weights"),
            numbers("center"), numbers("scale"), h["bias"].num("confidence_check.head.bias"))
    } catch (e: IllegalArgumentException) {
        throw JsonException(e.message ?: "confidence_check.head is invalid")
    }
}
