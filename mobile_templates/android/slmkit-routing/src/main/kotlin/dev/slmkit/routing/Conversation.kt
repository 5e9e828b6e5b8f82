package dev.slmkit.routing

/**
 * Routing a conversation (runtime/router/conversation.py): with truncation.historyTurns > 0, a request with
 * earlier user turns is routed twice, the last message alone and with the turns before it; the decision
 * whose policy tier comes later in the tier list (cheapest first) wins, a tie keeps the last message's.
 */
object Conversation {
    /** The chosen decision and which one it was: "last_message" or "conversation". */
    fun costlier(last: RouteDecision, whole: RouteDecision, policy: PolicySpec, tiers: List<String>): Pair<RouteDecision, String> {
        val lastRank = tiers.indexOf(Policy.chooseTier(last, policy).tier)
        val wholeRank = tiers.indexOf(Policy.chooseTier(whole, policy).tier)
        return if (wholeRank > lastRank) Pair(whole, "conversation") else Pair(last, "last_message")
    }
}

class ConversationRouter(private val inner: Router, private val spec: RoutingSpec) : Router {
    override val method: String get() = inner.method

    override fun decide(request: Request): RouteDecision {
        val last = inner.decide(request.copy(history = emptyList()))
        val earlier = request.earlierUserTurns(spec.router.truncation.historyTurns)
        if (earlier.isEmpty()) return last
        val whole = inner.decide(request)
        val (chosen, which) = Conversation.costlier(last, whole, spec.policy, spec.tiers.map { it.name })
        return chosen.copy(latencyMs = last.latencyMs + whole.latencyMs, conversation = linkedMapOf(
            "turns_read" to earlier.size, "chosen" to which, "last_message" to last.label,
            "last_message_confidence" to last.confidence, "conversation" to whole.label,
            "conversation_confidence" to whole.confidence))
    }
}
