import Foundation

/// The self-rating check (runtime/confidence/rating.py): "how sure, 1-10" -> rating, escalate or not.
/// ICU regular expressions are Unicode-aware like Python 3's: \d \w \b cover every script.
public enum Confidence {
    static let number = "(10|[1-9](?:\\.\\d+)?)"
    static let patterns: [NSRegularExpression] = [
        "(?<![\\d.\\-])\(number)\\s*(?:/|out of)\\s*10\\b",
        "\\b(?:rating|rate|score|confidence|confident)\\b[^0-9\\n\\-]{0,20}(?<![\\d.\\-])\(number)(?![\\d.]*\\d)",
        "^[^\\w\\-]*\(number)[^\\w\\-]*$",
        "(?<![\\d.\\-])\(number)(?![\\d]|\\.\\d)",
    ].map { PyRegex.compile($0, [.caseInsensitive, .anchorsMatchLines]) }

    public static func parseRating(_ text: String) -> Double? {
        let ns = text as NSString
        for pattern in patterns {
            if let match = pattern.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) {
                return Digits.toDouble(ns.substring(with: match.range(at: 1)))
            }
        }
        return nil
    }

    /// (rating, parsed?) with the spec's fallback for text that holds no rating.
    public static func ratingOrDefault(_ text: String, unparsableRating: Double) -> (Double, Bool) {
        if let rating = parseRating(text) { return (rating, true) }
        return (unparsableRating, false)
    }

    /// Below the threshold escalates; the threshold itself is enough.
    public static func shouldEscalate(_ rating: Double, threshold: Double) -> Bool { rating < threshold }
}

/// Python's float() reads any Unicode decimal digit; map them to ASCII first.
enum Digits {
    static func toDouble(_ text: String) -> Double? {
        var ascii = ""
        for scalar in text.unicodeScalars {
            if scalar.properties.numericType == .decimal, let value = scalar.properties.numericValue {
                ascii += String(Int(value))
            } else {
                ascii.unicodeScalars.append(scalar)
            }
        }
        return Double(ascii)
    }
}
