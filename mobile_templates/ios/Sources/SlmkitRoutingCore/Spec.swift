import Foundation

/// routing.json, version 1: the same contract as the Python runtime (runtime/spec.py).
public struct Truncation: Equatable {
    public var systemChars = 200
    public var userChars = 300
    public var userTailChars = 0
    /// Conversations (runtime/router/conversation.py): > 0 also routes the last message with this many earlier user turns.
    public var historyTurns = 0
    public var historyChars = 200

    public init(systemChars: Int = 200, userChars: Int = 300, userTailChars: Int = 0, historyTurns: Int = 0,
                historyChars: Int = 200) {
        self.systemChars = systemChars
        self.userChars = userChars
        self.userTailChars = userTailChars
        self.historyTurns = historyTurns
        self.historyChars = historyChars
    }

    init(json: [String: Any]) {
        systemChars = (json["system_chars"] as? NSNumber)?.intValue ?? 200
        userChars = (json["user_chars"] as? NSNumber)?.intValue ?? 300
        userTailChars = (json["user_tail_chars"] as? NSNumber)?.intValue ?? 0
        historyTurns = (json["history_turns"] as? NSNumber)?.intValue ?? 0
        historyChars = (json["history_chars"] as? NSNumber)?.intValue ?? 200
    }
}

public struct Route: Equatable {
    public let label: String
    public let tier: String
    public let minConfidence: Double
}

public struct PolicySpec: Equatable {
    public let routes: [Route]
    public let lowConfidenceTier: String
    public let unparsedTier: String

    public init(json: [String: Any]) throws {
        guard let routes = json["routes"] as? [[String: Any]],
              let low = json["low_confidence_tier"] as? String, let unparsed = json["unparsed_tier"] as? String else {
            throw SpecError.shape("policy needs routes, low_confidence_tier and unparsed_tier")
        }
        self.routes = try routes.map { route in
            guard let label = route["label"] as? String, let tier = route["tier"] as? String else {
                throw SpecError.shape("a policy route needs label and tier")
            }
            return Route(label: label, tier: tier, minConfidence: (route["min_confidence"] as? NSNumber)?.doubleValue ?? 0.8)
        }
        lowConfidenceTier = low
        unparsedTier = unparsed
    }
}

public enum SpecError: Error, CustomStringConvertible {
    case shape(String)
    public var description: String {
        switch self { case .shape(let message): return "routing.json: \(message)" }
    }
}

public struct RouterSpec {
    public let method: String
    public let labels: [String]
    public let weights: String?
    public let truncation: Truncation
    public let temperature: Double
    public let bias: [String: Double]
}

/// confidence_check (runtime/spec.py): the method and its threshold; `options` falls back to `fallback`.
public struct ConfidenceCheck {
    public let tiers: [String]
    public var method = "sampled_rating"
    public let threshold: Double
    public var feature = "mean"
    public var fallback = "token_logprob"
    public var fallbackThreshold: Double? = nil
    public let unparsableRating: Double
    public let maxTokens: Int
    public let prompt: String
    public var head: TrainedHead? = nil

    public func methods() -> [String] { method == "options" ? [method, fallback] : [method] }
    /// Requests with a closed label set are answered by the option walk.
    public func answersFromOptions() -> Bool { method == "options" || method == "trained" }
    public func needsTokenLogprobs() -> Bool { methods().contains { $0 == "token_logprob" || $0 == "trained" } }
}

public struct TierSpec {
    public let name: String
    public let backend: String
    public let model: String?
    public let onDevice: Bool
    public let baseURL: String?
    public let apiKeyEnv: String?
    public let priceInPerMTok: Double
    public let priceOutPerMTok: Double
    public let contextTokens: Int
    public let maxTokens: Int
    public let timeoutS: Double
    public let fallback: [String]?
    public let simulated: [String: Any]?
}

public struct RoutingSpec {
    public let name: String
    public let router: RouterSpec
    public let policy: PolicySpec
    public let confidenceCheck: ConfidenceCheck
    public let tiers: [TierSpec]

    public func tier(_ name: String) -> TierSpec? { tiers.first { PyText.same($0.name, name) } }

    /// Its own list, else every later tier, then the earlier ones nearest first.
    public func fallbacks(_ name: String) -> [String] {
        if let own = tier(name)?.fallback { return own }
        let names = tiers.map(\.name)
        guard let index = names.firstIndex(of: name) else { return [] }
        return Array(names[(index + 1)...]) + Array(names[..<index].reversed())
    }

    /// Escalation target after a low self-rating: the next tier down the list.
    public func nextTier(_ name: String) -> String? {
        let names = tiers.map(\.name)
        guard let index = names.firstIndex(of: name), index + 1 < names.count else { return nil }
        return names[index + 1]
    }

    public init(data: Data) throws {
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SpecError.shape("not a JSON object")
        }
        guard (json["version"] as? NSNumber)?.intValue == 1 else { throw SpecError.shape("version must be 1") }
        guard let r = json["router"] as? [String: Any], let method = r["method"] as? String,
              let labels = r["labels"] as? [String] else { throw SpecError.shape("router needs method and labels") }
        guard Set(labels).count == labels.count else { throw SpecError.shape("router labels must be unique (also after Unicode normalization)") }
        router = RouterSpec(method: method, labels: labels, weights: r["weights"] as? String,
                            truncation: Truncation(json: r["truncation"] as? [String: Any] ?? [:]),
                            temperature: (r["temperature"] as? NSNumber)?.doubleValue ?? 1.0,
                            bias: (r["bias"] as? [String: NSNumber] ?? [:]).mapValues(\.doubleValue))
        guard let policyJSON = json["policy"] as? [String: Any] else { throw SpecError.shape("no policy") }
        policy = try PolicySpec(json: policyJSON)
        guard let c = json["confidence_check"] as? [String: Any], let prompt = c["prompt"] as? String else {
            throw SpecError.shape("confidence_check needs a prompt")
        }
        confidenceCheck = ConfidenceCheck(tiers: c["tiers"] as? [String] ?? [],
                                          method: c["method"] as? String ?? "sampled_rating",
                                          threshold: (c["threshold"] as? NSNumber)?.doubleValue ?? 7,
                                          feature: c["feature"] as? String ?? "mean",
                                          fallback: c["fallback"] as? String ?? "token_logprob",
                                          fallbackThreshold: (c["fallback_threshold"] as? NSNumber)?.doubleValue,
                                          unparsableRating: (c["unparsable_rating"] as? NSNumber)?.doubleValue ?? 5,
                                          maxTokens: (c["max_tokens"] as? NSNumber)?.intValue ?? 8, prompt: prompt,
                                          head: try (c["head"] as? [String: Any]).map { try TrainedHead(json: $0) })
        if confidenceCheck.method == "trained" && confidenceCheck.head == nil {
            throw SpecError.shape("confidence_check: method trained needs `head`")
        }
        guard let tierList = json["tiers"] as? [[String: Any]] else { throw SpecError.shape("no tiers") }
        tiers = try tierList.map { t in
            guard let name = t["name"] as? String, let backend = t["backend"] as? String else {
                throw SpecError.shape("a tier needs name and backend")
            }
            return TierSpec(name: name, backend: backend, model: t["model"] as? String,
                            onDevice: t["on_device"] as? Bool ?? false, baseURL: t["base_url"] as? String,
                            apiKeyEnv: t["api_key_env"] as? String,
                            priceInPerMTok: (t["price_in_per_mtok"] as? NSNumber)?.doubleValue ?? 0,
                            priceOutPerMTok: (t["price_out_per_mtok"] as? NSNumber)?.doubleValue ?? 0,
                            contextTokens: (t["context_tokens"] as? NSNumber)?.intValue ?? 4096,
                            maxTokens: (t["max_tokens"] as? NSNumber)?.intValue ?? 512,
                            timeoutS: (t["timeout_s"] as? NSNumber)?.doubleValue ?? 60,
                            fallback: t["fallback"] as? [String], simulated: t["simulated"] as? [String: Any])
        }
        name = json["name"] as? String ?? ""
        try checkNames()
    }

    /// Every tier a spec names exists, once (runtime/spec.py `_names_resolve`): the pipeline relies on it.
    func checkNames() throws {
        let names = tiers.map(\.name)
        if Set(names.map(PyText.key)).count != names.count { throw SpecError.shape("tier names must be unique: \(names)") }
        var refs = [("policy.low_confidence_tier", policy.lowConfidenceTier), ("policy.unparsed_tier", policy.unparsedTier)]
        refs += policy.routes.map { ("policy.routes[\($0.label)]", $0.tier) }
        refs += confidenceCheck.tiers.map { ("confidence_check.tiers", $0) }
        refs += tiers.flatMap { t in (t.fallback ?? []).map { ("tiers[\(t.name)].fallback", $0) } }
        for (place, name) in refs where tier(name) == nil {
            throw SpecError.shape("\(place) names tier '\(name)'; the tiers are \(names)")
        }
    }
}
