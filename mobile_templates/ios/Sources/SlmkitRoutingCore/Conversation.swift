import Foundation

/// Routing a conversation (runtime/router/conversation.py): with truncation.historyTurns > 0, a request with
/// earlier user turns is routed twice, the last message alone and with the turns before it; the decision
/// whose policy tier comes later in the tier list (cheapest first) wins, a tie keeps the last message's.
public enum Conversation {
    /// The chosen decision and which one it was: "last_message" or "conversation".
    public static func costlier(last: RouteDecision, whole: RouteDecision, policy: PolicySpec,
                                tiers: [String]) -> (decision: RouteDecision, chosen: String) {
        let lastRank = tiers.firstIndex(of: Policy.chooseTier(last, policy).tier) ?? -1
        let wholeRank = tiers.firstIndex(of: Policy.chooseTier(whole, policy).tier) ?? -1
        return wholeRank > lastRank ? (whole, "conversation") : (last, "last_message")
    }
}

public final class ConversationRouter: Router {
    let inner: Router
    let spec: RoutingSpec
    public var method: String { inner.method }

    public init(inner: Router, spec: RoutingSpec) { self.inner = inner; self.spec = spec }

    public func decide(_ request: Request) throws -> RouteDecision {
        var alone = request
        alone.history = []
        let last = try inner.decide(alone)
        let earlier = request.earlierUserTurns(spec.router.truncation.historyTurns)
        if earlier.isEmpty { return last }
        let whole = try inner.decide(request)
        let (decision, which) = Conversation.costlier(last: last, whole: whole, policy: spec.policy, tiers: spec.tiers.map(\.name))
        var chosen = decision
        chosen.latencyMs = last.latencyMs + whole.latencyMs
        chosen.conversation = ["turns_read": earlier.count, "chosen": which, "last_message": last.label as Any,
                               "last_message_confidence": last.confidence, "conversation": whole.label as Any,
                               "conversation_confidence": whole.confidence]
        return chosen
    }
}
