import Foundation

// The confidence methods' arithmetic (runtime/confidence/: options.py, rating.py, logprob.py), pinned by
// the golden vectors options, option_choice, rating_distribution and token_confidence.

/// A prompt evaluated by the tier's engine, extendable token by token with the KV cache kept.
public protocol Continuation: AnyObject {
    var promptTokens: Int { get }
    /// Natural-log probabilities of the next token over the vocabulary.
    func logprobs() throws -> [Double]
    func append(_ tokens: [Int]) throws
    /// Token ids of `text` as a continuation (no BOS, special tokens not parsed).
    func tokenize(_ text: String) throws -> [Int]
}

public enum TokenConfidence {
    public static let features = ["mean", "min", "first", "first_margin", "mean_margin"]

    public static func logSoftmax(_ logits: [Double]) -> [Double] {
        guard let top = logits.max() else { return logits }
        let norm = top + log(logits.reduce(0.0) { $0 + exp($1 - top) })
        return logits.map { $0 - norm }
    }

    /// (log-probability of `token`, its log-probability minus the best other token's).
    public static func tokenStats(_ logits: [Double], token: Int) -> (Double, Double) {
        let logprobs = logSoftmax(logits)
        var other = -Double.infinity
        for (i, value) in logprobs.enumerated() where i != token && value > other { other = value }
        return (logprobs[token], logprobs[token] - other)
    }

    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    public static func confidence(_ feature: String, logprobs: [Double], margins: [Double]) -> Double? {
        guard features.contains(feature) else { return nil }
        guard !logprobs.isEmpty else { return 0 }
        switch feature {
        case "mean": return exp(logprobs.reduce(0, +) / Double(logprobs.count))
        case "min": return exp(logprobs.min()!)
        case "first": return exp(logprobs[0])
        case "first_margin": return sigmoid(margins[0])
        default: return sigmoid(margins.reduce(0, +) / Double(margins.count))
        }
    }
}

public enum Options {
    static let maxItemChars = 48
    static let maxItemWords = 4
    static let minOptions = 2
    static let cue = "(?:\\bone of(?: the following| these)?(?: [a-z]+)?|\\boptions(?: are)?|\\bpossible [a-z]+"
        + "|\\bchoices(?: are)?|\\bchoose from|\\blabels(?: are)?|\\bcategories(?: are)?)"
    // Python's patterns (runtime/confidence/options.py) with Python's \w \b \s, only \n ending a line.
    static func regex(_ pattern: String, _ options: NSRegularExpression.Options = []) -> NSRegularExpression {
        PyRegex.compile(pattern, options)
    }
    static let cuedLines = regex(cue + "\\s*:[ \\t]*\\n((?:[ \\t]*[-*]?[ \\t]*[^\\n]+\\n?)+)", .caseInsensitive)
    static let cuedInline = regex(cue + "\\s*(?::|-|–)[ \\t]*([^\\n]+?)(?:\\.(?:\\s|$)|\\?(?:\\s|$)|\\n|$)", .caseInsensitive)
    static let answerList = regex("\\banswer(?: with)?\\s+((?:[\\w'-]+(?: [\\w'-]+){0,3}, )+[\\w'-]+(?: [\\w'-]+){0,3},? or "
        + "[\\w'-]+(?: [\\w'-]+){0,3})\\s*(?:\\.|$)", [.caseInsensitive, .anchorsMatchLines])
    static let slashed = regex("\\(([^()\\n]+?(?:\\s/\\s[^()\\n]+?)+)\\)")
    static let jsonForm = regex("\\{[^{}\\n]*<[a-z_]+>[^{}\\n]*\\}")
    static let placeholder = regex("<[a-z_]+>")
    static let inlineSeparators = regex("\\s*,\\s*(?:or\\s+|and\\s+)?|\\s+or\\s+")
    static let slashSeparator = regex("\\s/\\s")
    static let newline = regex("\\n")
    static let whitespace = regex("\\s+")
    static let strip: Set<Unicode.Scalar> = [" ", "\t", "\"", "'", "`", "*", "-"]

    static func split(_ text: String, _ separator: NSRegularExpression) -> [String] {
        let ns = text as NSString
        var parts: [String] = []
        var start = 0
        for match in separator.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            parts.append(ns.substring(with: NSRange(location: start, length: match.range.location - start)))
            start = match.range.location + match.range.length
        }
        parts.append(ns.substring(from: start))
        return parts
    }

    static func items(_ text: String, _ separator: NSRegularExpression) -> [String]? {
        let parts = split(PyText.strip(text), separator).map { PyText.strip($0, strip) }.filter { !$0.isEmpty }
        guard parts.count >= minOptions, Set(parts.map(PyText.key)).count == parts.count else { return nil }
        for part in parts {
            let words = split(PyText.strip(part), whitespace).filter { !$0.isEmpty }
            if part.unicodeScalars.count > maxItemChars || words.count > maxItemWords { return nil }
        }
        return parts
    }

    static func lines(_ block: String) -> [String]? {
        var kept: [String] = []
        for line in block.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map({ String(String.UnicodeScalarView($0)) }) {
            if PyText.strip(line).isEmpty { break }
            kept.append(line)
        }
        return items(kept.joined(separator: "\n"), newline)
    }

    /// The closed set of labels `prompt` asks to choose from, or nil (none, or more than one list).
    public static func extract(_ prompt: String) -> [String]? {
        let ns = prompt as NSString
        var found: [(Int, [String]?)] = []
        var taken: [NSRange] = []
        let patterns: [(NSRegularExpression, (String) -> [String]?)] = [
            (cuedLines, { lines($0) }), (cuedInline, { items($0, inlineSeparators) }),
            (answerList, { items($0, inlineSeparators) }), (slashed, { items($0, slashSeparator) }),
        ]
        for (pattern, parse) in patterns {
            for match in pattern.matches(in: prompt, range: NSRange(location: 0, length: ns.length)) {
                let span = match.range
                if taken.contains(where: { span.location < $0.location + $0.length && $0.location < span.location + span.length }) {
                    continue
                }
                taken.append(span)
                found.append((span.location, parse(ns.substring(with: match.range(at: 1)))))
            }
        }
        let lists = found.sorted { $0.0 < $1.0 }.compactMap { $0.1 }
        return lists.count == 1 ? lists[0] : nil
    }

    static func form(_ prompt: String) -> String? {
        let ns = prompt as NSString
        let forms = jsonForm.matches(in: prompt, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
        guard forms.count == 1 else { return nil }
        let holders = placeholder.numberOfMatches(in: forms[0], range: NSRange(location: 0, length: (forms[0] as NSString).length))
        return holders == 1 ? forms[0] : nil
    }

    /// The prompt's JSON form with its one placeholder filled, else the option itself.
    public static func answerText(_ prompt: String, option: String) -> String {
        guard let form = form(prompt) else { return option }
        let ns = form as NSString
        let range = placeholder.firstMatch(in: form, range: NSRange(location: 0, length: ns.length))!.range
        return ns.replacingCharacters(in: range, with: option)
    }

    /// The answer before the option (the JSON form up to its placeholder), forced before scoring.
    public static func answerPrefix(_ prompt: String) -> String {
        guard let form = form(prompt), let index = form.unicodeScalars.firstIndex(of: "<") else { return "" }
        return String(form.unicodeScalars[..<index])
    }

    /// `margin`: the closest branch's chosen minus runner-up renormalized probability.
    public struct Choice {
        public let index: Int; public let probability: Double; public let evaluated: Int; public let margin: Double
    }

    /// Greedy walk of the options' token trie, renormalized over the options at each branch.
    public static func choose(_ continuation: Continuation, options: [[Int]]) throws -> Choice {
        guard !options.isEmpty && options.allSatisfy({ !$0.isEmpty }) && Set(options).count == options.count else {
            throw TierError("options must be distinct, non-empty token sequences")
        }
        var live = Array(options.indices)
        var depth = 0
        var probability = 1.0
        var evaluated = 0
        var margin = 1.0
        while live.count > 1 {
            let ended = live.filter { options[$0].count == depth }
            let children = Array(Set(live.filter { options[$0].count > depth }.map { options[$0][depth] })).sorted()
            if children.count == 1 && ended.isEmpty {
                try continuation.append(children)
                evaluated += 1
                depth += 1
                continue
            }
            let logprobs = try continuation.logprobs()
            let masses = children.map { exp(logprobs[$0]) }
            let candidates = ended.isEmpty ? masses : masses + [max(0, 1 - masses.reduce(0, +))]
            let total = candidates.reduce(0, +)
            let shares = candidates.map { total > 0 ? $0 / total : 1 / Double(candidates.count) }
            var best = 0
            for k in shares.indices where shares[k] > shares[best] { best = k }
            probability *= shares[best]
            let runnerUp = shares.indices.filter { $0 != best }.map { shares[$0] }.max() ?? -Double.infinity
            margin = min(margin, shares[best] - runnerUp)
            if best == masses.count {
                return Choice(index: ended[0], probability: probability, evaluated: evaluated, margin: margin)
            }
            let token = children[best]
            let level = depth
            live = live.filter { options[$0].count > level && options[$0][level] == token }
            depth += 1
            if live.count > 1 {
                try continuation.append([token])
                evaluated += 1
            }
        }
        return Choice(index: live[0], probability: probability, evaluated: evaluated, margin: margin)
    }
}

public enum RatingDistribution {
    public static let ratings = Array(1...10)

    /// P(rating 1-10) renormalized over the ratings, one shared first token (e.g. "1" of "10") expanded.
    public static func distribution(_ continuation: Continuation) throws -> [Int: Double] {
        var spelled: [Int: [Int]] = [:]
        for r in ratings {
            spelled[r] = try continuation.tokenize(String(r))
            if spelled[r]!.isEmpty { throw TierError("the tokenizer spells rating \(r) with no token") }
        }
        let logprobs = try continuation.logprobs()
        var groups: [Int: [Int]] = [:]
        var order: [Int] = []
        for r in ratings {
            let first = spelled[r]![0]
            if groups[first] == nil { order.append(first) }
            groups[first, default: []].append(r)
        }
        let shared = order.filter { groups[$0]!.count > 1 || spelled[groups[$0]![0]]!.count > 1 }
        if shared.count > 1 { throw TierError("ratings share \(shared.count) first tokens; one can be expanded") }
        var mass: [Int: Double] = [:]
        for r in ratings where !shared.contains(spelled[r]![0]) { mass[r] = exp(logprobs[spelled[r]![0]]) }
        if let first = shared.first {
            let head = exp(logprobs[first])
            try continuation.append([first])
            let after = try continuation.logprobs()
            var longer: [Int: Double] = [:]
            for r in groups[first]! where spelled[r]!.count > 1 { longer[r] = exp(after[spelled[r]![1]]) }
            let rest = max(0, 1 - longer.values.reduce(0, +))
            for r in groups[first]! { mass[r] = head * (longer[r] ?? rest) }
        }
        let total = ratings.reduce(0.0) { $0 + mass[$1]! }
        var out: [Int: Double] = [:]
        for r in ratings { out[r] = total > 0 ? mass[r]! / total : 1 / Double(ratings.count) }
        return out
    }

    public static func expected(_ distribution: [Int: Double]) -> Double {
        distribution.reduce(0.0) { $0 + Double($1.key) * $1.value }
    }
}

/// `trained`: a logistic head over the answer's own features (runtime/confidence/head.py).
public struct TrainedHead {
    public static let features = ["options", "option_logprob", "option_margin", "option_count", "token_mean", "token_min",
                                  "first_margin", "answer_tokens", "prompt_tokens"]
    public static let logprobFloor = -30.0

    public let features: [String]
    public let weights: [Double]
    public let center: [Double]
    public let scale: [Double]
    public let bias: Double

    public init(features: [String], weights: [Double], center: [Double], scale: [Double], bias: Double) throws {
        if let unknown = features.first(where: { !TrainedHead.features.contains($0) }) {
            throw SpecError.shape("confidence_check.head: unknown feature \(unknown)")
        }
        guard weights.count == features.count, center.count == features.count, scale.count == features.count else {
            throw SpecError.shape("confidence_check.head: features, weights, center and scale must have the same length")
        }
        guard scale.allSatisfy({ $0 > 0 }) else { throw SpecError.shape("confidence_check.head: every scale must be > 0") }
        self.features = features; self.weights = weights; self.center = center; self.scale = scale; self.bias = bias
    }

    /// sigmoid(bias + sum weights[i] * (x[features[i]] - center[i]) / scale[i]); a missing feature counts as 0.
    public func value(_ x: [String: Double]) -> Double {
        var z = bias
        for i in features.indices { z += weights[i] * ((x[features[i]] ?? 0) - center[i]) / scale[i] }
        return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }

    static func clip(_ logprob: Double) -> Double { logprob.isNaN ? logprobFloor : max(logprobFloor, logprob) }

    static func zeros() -> [String: Double] { Dictionary(uniqueKeysWithValues: features.map { ($0, 0.0) }) }

    /// An answer the option walk chose among `count` options after `promptTokens` prompt tokens.
    public static func optionFeatures(probability: Double, margin: Double, count: Int, promptTokens: Int) -> [String: Double] {
        var x = zeros()
        x["options"] = 1
        x["option_logprob"] = probability > 0 ? clip(log(probability)) : logprobFloor
        x["option_margin"] = margin
        x["option_count"] = log(Double(count))
        x["prompt_tokens"] = log1p(Double(promptTokens))
        return x
    }

    /// A generated answer, from its tokens' log-probabilities and margins over the runner-up.
    public static func answerFeatures(logprobs: [Double], margins: [Double], promptTokens: Int) -> [String: Double] {
        var x = zeros()
        let clipped = logprobs.map(clip)
        x["token_mean"] = clipped.isEmpty ? logprobFloor : clipped.reduce(0, +) / Double(clipped.count)
        x["token_min"] = clipped.min() ?? logprobFloor
        x["first_margin"] = margins.first.map { max(logprobFloor, min(-logprobFloor, $0)) } ?? logprobFloor
        x["answer_tokens"] = log1p(Double(clipped.count))
        x["prompt_tokens"] = log1p(Double(promptTokens))
        return x
    }

    /// confidence_check.head as runtime/spec.py `TrainedHead` writes it.
    public init(json: [String: Any]) throws {
        func numbers(_ key: String) throws -> [Double] {
            guard let list = json[key] as? [NSNumber] else { throw SpecError.shape("confidence_check.head.\(key) must be numbers") }
            return list.map(\.doubleValue)
        }
        guard let names = json["features"] as? [String], let bias = (json["bias"] as? NSNumber)?.doubleValue else {
            throw SpecError.shape("confidence_check.head needs features and bias")
        }
        try self.init(features: names, weights: try numbers("weights"), center: try numbers("center"),
                      scale: try numbers("scale"), bias: bias)
    }
}
