import Foundation

/// What every router returns (runtime/router/decision.py). label nil = unreadable output.
public struct RouteDecision {
    public var label: String?
    public var confidence: Double
    public var probabilities: [String: Double] = [:]
    public var raw = ""
    public var latencyMs = 0.0
    public var method = ""
    /// ConversationRouter: both decisions and which one won (runtime/router/conversation.py).
    public var conversation: [String: Any]? = nil

    public init(label: String?, confidence: Double, probabilities: [String: Double] = [:], raw: String = "",
                latencyMs: Double = 0, method: String = "") {
        self.label = label
        self.confidence = confidence
        self.probabilities = probabilities
        self.raw = raw
        self.latencyMs = latencyMs
        self.method = method
    }
}

public enum Decisions {
    /// Numerically stable softmax(logits / T); -inf logits get probability 0.
    public static func softmax(_ logits: [Double], temperature: Double = 1) -> [Double] {
        let scaled = logits.map { $0 / temperature }
        let top = scaled.max() ?? -Double.infinity
        precondition(top != -Double.infinity, "every logit is -inf")
        let exps = scaled.map { Foundation.exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.map { $0 / total }
    }

    /// Logits over task categories, each counting toward label groups[category] (runtime/router/decision.py):
    /// p(label) = sum of softmax(logits / T) over its categories; argmax label, the first winning a tie;
    /// `raw` names the likeliest category and its probability.
    public static func fromGroupedLogits(_ labels: [String], classes: [String], _ logits: [Double], groups: [String: String],
                                         temperature: Double = 1, method: String = "") -> RouteDecision {
        let probs = softmax(logits, temperature: temperature)
        var totals = Dictionary(labels.map { ($0, 0.0) }, uniquingKeysWith: { first, _ in first })
        for (i, name) in classes.enumerated() { if let label = groups[name] { totals[label, default: 0] += probs[i] } }
        var best = 0
        for i in labels.indices where totals[labels[i]]! > totals[labels[best]]! { best = i }
        var top = 0
        for i in probs.indices where probs[i] > probs[top] { top = i }
        return RouteDecision(label: labels[best], confidence: totals[labels[best]]!, probabilities: totals,
                             raw: "\(classes[top]) \(String(format: "%.6f", locale: Locale(identifier: "en_US_POSIX"), probs[top]))",
                             method: method)
    }

    /// Argmax label (the first label wins a tie) with its calibrated probability as the confidence.
    public static func fromLogits(_ labels: [String], _ logits: [Double], temperature: Double = 1, method: String = "") -> RouteDecision {
        let probs = softmax(logits, temperature: temperature)
        var best = 0
        for i in probs.indices where probs[i] > probs[best] { best = i }
        return RouteDecision(label: labels[best], confidence: probs[best],
                             probabilities: Dictionary(zip(labels, probs), uniquingKeysWith: { first, _ in first }), method: method)
    }
}

/// The tier policy (runtime/policy.py): route by label; unsure or unreadable goes to the safe tier.
public enum Policy {
    public static func chooseTier(_ decision: RouteDecision, _ policy: PolicySpec) -> (tier: String, reason: String) {
        guard let label = decision.label else { return (policy.unparsedTier, "router output unparsable") }
        guard let route = policy.routes.first(where: { PyText.same($0.label, label) }) else {
            return (policy.unparsedTier, "no route for label '\(label)'")
        }
        let shown = String(format: "%.3f", decision.confidence)
        if decision.confidence < route.minConfidence {
            return (policy.lowConfidenceTier, "\(label) with confidence \(shown) < \(route.minConfidence)")
        }
        return (route.tier, "\(label) with confidence \(shown)")
    }
}
