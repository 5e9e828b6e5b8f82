import Foundation

/// Reading a small model's router answer (runtime/router/parse.py): messy text in, label + confidence out.
/// Text is compared, lowered and stripped as Python does (PyText), JSON read as json.loads reads it
/// (PyJSON), and patterns keep Python's `\w \b \s` (PyRegex).
public struct ParsedRoute: Equatable {
    public let label: String
    public let confidence: Double?

    public init(label: String, confidence: Double?) {
        self.label = label
        self.confidence = confidence
    }
}

public enum RouterParse {
    static let labelKeys = ["complexity", "tier", "label", "category", "class", "difficulty"]
    static let confidenceKeys = ["confidence", "conf", "probability", "certainty"]
    static let trailingComma = PyRegex.compile(",\\s*([}\\]])")
    static let ratio = PyRegex.compile("^(?:(\\d+(?:\\.\\d+)?)\\s*/\\s*(10|100))$")
    static let percent = PyRegex.compile("^(?:(\\d+(?:\\.\\d+)?)\\s*(%?))$")

    /// Python's re.fullmatch: the groups, or nil. `^(?:...)$` without multiline also accepts a final
    /// "\n" in ICU as in Python's `$`, so the match must also end at the text's end.
    static func fullmatch(_ regex: NSRegularExpression, _ text: String) -> [String]? {
        let ns = text as NSString
        guard let m = regex.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)),
              m.range.location == 0, m.range.length == ns.length else { return nil }
        return (0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
    }

    /// Every balanced {...} span, outermost first, ignoring braces inside strings; code point by code
    /// point (a "{" followed by a combining mark is still a brace, as in Python).
    static func jsonObjects(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var spans: [String] = []
        var depth = 0, start = 0
        var quote: Unicode.Scalar? = nil
        var escaped = false
        for (i, ch) in scalars.enumerated() {
            if let q = quote {
                if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == q { quote = nil }
            } else if (ch == "\"" || ch == "'") && depth > 0 {
                quote = ch
            } else if ch == "{" {
                if depth == 0 { start = i }
                depth += 1
            } else if ch == "}" && depth > 0 {
                depth -= 1
                if depth == 0 { spans.append(String(String.UnicodeScalarView(scalars[start...i]))) }
            }
        }
        return spans
    }

    /// json.loads, then again with single quotes and trailing commas repaired; the object's pairs or nil.
    static func loadsLenient(_ span: String) -> [(String, JSONValue)]? {
        let quoted = String(String.UnicodeScalarView(span.unicodeScalars.map { $0 == "'" ? "\"" : $0 }))
        let repaired = trailingComma.stringByReplacingMatches(
            in: quoted, range: NSRange(location: 0, length: (quoted as NSString).length), withTemplate: "$1")
        for candidate in [span, repaired] {
            if let pairs = (try? PyJSON.loads(candidate))?.pairs { return pairs }
        }
        return nil
    }

    /// 0.85, "0.85", 85, "85%", "8/10" -> 0.85 / 0.8; anything else (or out of range) -> nil.
    public static func parseConfidence(_ value: JSONValue?) -> Double? {
        switch value {
        case .number(let n, _): return inRange(n)
        case .string(let s):
            let text = PyText.strip(s)
            if let r = fullmatch(ratio, text), let a = Digits.toDouble(r[1]), let b = Digits.toDouble(r[2]) {
                return inRange(a / b)
            }
            guard let m = fullmatch(percent, text), let n = Digits.toDouble(m[1]) else { return nil }
            return m[2].isEmpty ? inRange(n) : inRange(n / 100)
        default: return nil   // booleans, null, lists, objects
        }
    }

    static func inRange(_ number: Double) -> Double? {
        if !number.isFinite || number < 0 { return nil }
        if number <= 1 { return number }
        if number <= 100 { return number / 100 }
        return nil
    }

    static func labelOf(_ value: JSONValue?, _ labels: [String]) -> String? {
        guard let s = value?.string else { return nil }
        let word = PyText.lower(PyText.strip(PyText.strip(s), ["."]))
        return labels.first { PyText.same($0, word) }
    }

    static func fromObject(_ pairs: [(String, JSONValue)], _ labels: [String]) -> ParsedRoute? {
        let lowered = PyJSON.dict(pairs.map { (PyText.lower(PyText.strip($0.0)), $0.1) })
        func find(_ keys: [String]) -> JSONValue?? {
            for key in keys { if let hit = lowered.first(where: { PyText.same($0.0, key) }) { return .some(hit.1) } }
            return nil
        }
        guard let labelValue = find(labelKeys), let label = labelOf(labelValue, labels) else { return nil }
        return ParsedRoute(label: label, confidence: find(confidenceKeys).flatMap { parseConfidence($0) })
    }

    /// The router's verdict, or nil when the text does not name exactly one label clearly.
    public static func parse(_ text: String, labels: [String] = ["simple", "medium", "complex"]) -> ParsedRoute? {
        for span in jsonObjects(text) {
            if let pairs = loadsLenient(span), let parsed = fromObject(pairs, labels) { return parsed }
        }
        let ns = text as NSString
        let all = NSRange(location: 0, length: ns.length)
        let alternatives = labels.joined(separator: "|")
        let keyed = PyRegex.compile("[\"']?(?:\(labelKeys.joined(separator: "|")))[\"']?\\s*[:=]\\s*[\"']?(\(alternatives))\\b",
                                    .caseInsensitive)
        // IGNORECASE also matches "sımple" (dotless i), which is no label: such a match does not count.
        if let m = keyed.firstMatch(in: text, range: all), labels.contains(where: { PyText.same($0, PyText.lower(ns.substring(with: m.range(at: 1)))) }) {
            let confidence = PyRegex.compile("[\"']?(?:\(confidenceKeys.joined(separator: "|")))[\"']?\\s*[:=]\\s*[\"']?(\\d+(?:\\.\\d+)?\\s*%?)",
                                             .caseInsensitive).firstMatch(in: text, range: all)
            return ParsedRoute(label: PyText.lower(ns.substring(with: m.range(at: 1))),
                               confidence: confidence.flatMap { parseConfidence(.string(ns.substring(with: $0.range(at: 1)))) })
        }
        var named: [[UInt32]: String] = [:]
        for m in PyRegex.compile("\\b(\(alternatives))\\b", .caseInsensitive).matches(in: text, range: all) {
            let word = PyText.lower(ns.substring(with: m.range(at: 1)))
            if labels.contains(where: { PyText.same($0, word) }) { named[PyText.key(word)] = word }
        }
        return named.count == 1 ? ParsedRoute(label: named.values.first!, confidence: nil) : nil
    }
}
