package dev.slmkit.routing

/** What every router returns (runtime/router/decision.py). label null = unreadable output. */
data class RouteDecision(val label: String?, val confidence: Double, val probabilities: Map<String, Double> = emptyMap(),
                         val raw: String = "", val latencyMs: Double = 0.0, val method: String = "",
                         /** ConversationRouter: both decisions and which one won (runtime/router/conversation.py). */
                         val conversation: Map<String, Any?>? = null)

object Decisions {
    /** Numerically stable softmax(logits / T); -inf logits get probability 0. */
    fun softmax(logits: List<Double>, temperature: Double = 1.0): List<Double> {
        val scaled = logits.map { it / temperature }
        val top = scaled.maxOrNull() ?: throw IllegalArgumentException("no logits")
        if (top == Double.NEGATIVE_INFINITY) throw IllegalArgumentException("every logit is -inf")
        val exps = scaled.map { Math.exp(it - top) }
        val total = exps.sum()
        return exps.map { it / total }
    }

    /** Logits over task categories, each counting toward label groups[category] (runtime/router/decision.py):
     *  p(label) = sum of softmax(logits / T) over its categories; argmax label, the first winning a tie;
     *  `raw` names the likeliest category and its probability. */
    fun fromGroupedLogits(labels: List<String>, classes: List<String>, logits: List<Double>, groups: Map<String, String>,
                          temperature: Double = 1.0, method: String = ""): RouteDecision {
        val probs = softmax(logits, temperature)
        val totals = LinkedHashMap<String, Double>()
        for (label in labels) totals[label] = 0.0
        for ((i, name) in classes.withIndex()) {
            val label = groups[name] ?: throw JsonException("category $name has no label group")
            totals[label] = (totals[label] ?: throw JsonException("group $label is not a label")) + probs[i]
        }
        var best = 0
        for (i in labels.indices) if (totals.getValue(labels[i]) > totals.getValue(labels[best])) best = i
        var top = 0
        for (i in probs.indices) if (probs[i] > probs[top]) top = i
        return RouteDecision(labels[best], totals.getValue(labels[best]), totals, raw = "${classes[top]} ${String.format(java.util.Locale.ROOT, "%.6f", probs[top])}",
            method = method)
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
            return PolicyChoice(policy.lowConfidenceTier, "$label with confidence ${String.format(java.util.Locale.ROOT, "%.3f", decision.confidence)} < ${route.minConfidence}")
        }
        return PolicyChoice(route.tier, "$label with confidence ${String.format(java.util.Locale.ROOT, "%.3f", decision.confidence)}")
    }
}
