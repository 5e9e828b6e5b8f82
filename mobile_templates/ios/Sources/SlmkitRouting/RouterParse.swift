import Foundation

/// Reading a small model's router answer (runtime/router/parse.py): messy text in, label + confidence out.
public struct ParsedRoute: Equatable {
    public let label: String
    public let confidence: Double?
}

public enum RouterParse {
    static let labelKeys = ["complexity", "tier", "label", "category", "class", "difficulty"]
    static let confidenceKeys = ["confidence", "conf", "probability", "certainty"]

    static func regex(_ pattern: String, _ options: NSRegularExpression.Options = []) -> NSRegularExpression {
        try! NSRegularExpression(pattern: pattern, options: options)
    }

    static func whole(_ pattern: String, _ text: String) -> [String]? {
        let ns = text as NSString
        guard let m = regex("^(?:\(pattern))$").firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
    }

    /// Every balanced {...} span, outermost first, ignoring braces inside strings.
    static func jsonObjects(_ text: String) -> [String] {
        var spans: [String] = []
        var depth = 0
        var start = text.startIndex
        var quote: Character? = nil
        var escaped = false
        var i = text.startIndex
        while i < text.endIndex {
            let ch = text[i]
            if let q = quote {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == q { quote = nil }
            } else if (ch == "\"" || ch == "'") && depth > 0 {
                quote = ch
            } else if ch == "{" {
                if depth == 0 { start = i }
                depth += 1
            } else if ch == "}" && depth > 0 {
                depth -= 1
                if depth == 0 { spans.append(String(text[start...i])) }
            }
            i = text.index(after: i)
        }
        return spans
    }

    static func loadsLenient(_ span: String) -> [String: Any]? {
        let repaired = regex(",\\s*([}\\]])").stringByReplacingMatches(
            in: span.replacingOccurrences(of: "'", with: "\""), range: NSRange(location: 0, length: (span as NSString).length),
            withTemplate: "$1")
        for candidate in [span, repaired] {
            if let data = candidate.data(using: .utf8),
               let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any] {
                return object
            }
        }
        return nil
    }

    /// 0.85, "0.85", 85, "85%", "8/10" -> 0.85 / 0.8; anything else (or out of range) -> nil.
    public static func parseConfidence(_ value: Any?) -> Double? {
        var number: Double
        if let n = value as? NSNumber {
            if CFGetTypeID(n) == CFBooleanGetTypeID() { return nil }
            number = n.doubleValue
        } else if let s = value as? String {
            let text = s.trimmingCharacters(in: .whitespacesAndNewlines)
            if let ratio = whole("(\\d+(?:\\.\\d+)?)\\s*/\\s*(10|100)", text),
               let a = Digits.toDouble(ratio[1]), let b = Digits.toDouble(ratio[2]) {
                return parseConfidence(NSNumber(value: a / b))
            }
            guard let match = whole("(\\d+(?:\\.\\d+)?)\\s*(%?)", text), let n = Digits.toDouble(match[1]) else { return nil }
            if !match[2].isEmpty { return parseConfidence(NSNumber(value: n / 100)) }
            number = n
        } else {
            return nil
        }
        if !number.isFinite || number < 0 { return nil }
        if number <= 1 { return number }
        if number <= 100 { return number / 100 }
        return nil
    }

    static func labelOf(_ value: Any?, _ labels: [String]) -> String? {
        guard let s = value as? String else { return nil }
        let word = s.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: ".")).lowercased()
        return labels.contains(word) ? word : nil
    }

    static func fromObject(_ object: [String: Any], _ labels: [String]) -> ParsedRoute? {
        var lowered: [String: Any] = [:]
        for (k, v) in object { lowered[k.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()] = v }
        guard let labelKey = labelKeys.first(where: { lowered[$0] != nil }), let label = labelOf(lowered[labelKey], labels) else {
            return nil
        }
        let confidenceKey = confidenceKeys.first { lowered[$0] != nil }
        return ParsedRoute(label: label, confidence: confidenceKey.flatMap { parseConfidence(lowered[$0]) })
    }

    /// The router's verdict, or nil when the text does not name exactly one label clearly.
    public static func parse(_ text: String, labels: [String] = ["simple", "medium", "complex"]) -> ParsedRoute? {
        for span in jsonObjects(text) {
            if let object = loadsLenient(span), let parsed = fromObject(object, labels) { return parsed }
        }
        let ns = text as NSString
        let all = NSRange(location: 0, length: ns.length)
        let alternatives = labels.joined(separator: "|")
        let keyed = regex("[\"']?(?:\(labelKeys.joined(separator: "|")))[\"']?\\s*[:=]\\s*[\"']?(\(alternatives))\\b", .caseInsensitive)
        if let m = keyed.firstMatch(in: text, range: all) {
            let confidence = regex("[\"']?(?:\(confidenceKeys.joined(separator: "|")))[\"']?\\s*[:=]\\s*[\"']?(\\d+(?:\\.\\d+)?\\s*%?)",
                                   .caseInsensitive).firstMatch(in: text, range: all)
            return ParsedRoute(label: ns.substring(with: m.range(at: 1)).lowercased(),
                               confidence: confidence.flatMap { parseConfidence(ns.substring(with: $0.range(at: 1))) })
        }
        let named = Set(regex("\\b(\(alternatives))\\b", .caseInsensitive).matches(in: text, range: all)
            .map { ns.substring(with: $0.range(at: 1)).lowercased() })
        return named.count == 1 ? ParsedRoute(label: named.first!, confidence: nil) : nil
    }
}
