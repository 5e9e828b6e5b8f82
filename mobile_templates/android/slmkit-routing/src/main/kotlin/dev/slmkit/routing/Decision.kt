package dev.slmkit.routing

/** What every router returns (runtime/router/decision.py). label null = unreadable output. */
data class RouteDecision(val label: String?, val confidence: Double, val probabilities: Map<String, Double> = emptyMap(),
                         val raw: String = "", val latencyMs: Double = 0.0, val method: String = "")

object Decisions {
    /** Numerically stable softmax(logits / T); -inf logits get probability 0. */
    fun softmax(logits: List<Double>, temperature: Double = 1.0): List<Double> {
        val scaled = logits.map { it / temperature }
        val top = scaled.max() ?: throw IllegalArgumentException("no logits")
        if (top == Double.NEGATIVE_INFINITY) throw IllegalArgumentException("every logit is -inf")
        val exps = scaled.map { Math.exp(it - top) }
        val total = exps.sum()
        return exps.map { it / total }
    }

    /** Argmax label (the first label wins a tie) with its calibrated probability as the confidence. */
    fun fromLogits(labels: List<String>, logits: List<Double>, temperature: Double = 1.0, method: String = ""): RouteDecision {
        val probs = softmax(logits, temperature)
        var best = 0
        for (i in probs.indices) if (probs[i] > probs[best]) best = i
        return RouteDecision(labels[best], probs[best], labels.zip(probs).toMap(), method = method)
    }
}

/** The tier policy (runtime/policy.py): route by label; unsure or unreadable goes to the safe tier. */
data class PolicyChoice(val tier: String, val reason: String)

object Policy {
    fun chooseTier(decision: RouteDecision, policy: PolicySpec): PolicyChoice {
        val label = decision.label ?: return PolicyChoice(policy.unparsedTier, "router output unparsable")
        val route = policy.routes.firstOrNull { it.label == label }
            ?: return PolicyChoice(policy.unparsedTier, "no route for label '$label'")
        if (decision.confidence < route.minConfidence) {
            return PolicyChoice(policy.lowConfidenceTier, "$label with confidence ${"%.3f".format(decision.confidence)} < ${route.minConfidence}")
        }
        return PolicyChoice(route.tier, "$label with confidence ${"%.3f".format(decision.confidence)}")
    }
}
