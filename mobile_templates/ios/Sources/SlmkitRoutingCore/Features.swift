import Foundation

/// The classifier router's features (runtime/router/features.py), line by line: lowercase, words =
/// maximal runs of Unicode letters/numbers (Python's [^\W_]), FNV-1a 32-bit of the UTF-8 feature
/// strings modulo the bucket count, binary presence, L2-normalized; plus whole-request numbers.
public enum Features {
    public static func fnv1a(_ text: String) -> UInt32 {
        var h: UInt32 = 0x811C9DC5
        for byte in text.utf8 { h = (h ^ UInt32(byte)) &* 0x01000193 }
        return h
    }

    /// Python's str.isdigit(): Numeric_Type Decimal or Digit.
    static func isDigit(_ s: Unicode.Scalar) -> Bool {
        s.properties.numericType == .decimal || s.properties.numericType == .digit
    }

    public static func words(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in PyText.lower(text).unicodeScalars {
            if PyText.isAlnum(scalar) { current.append(scalar) } else if !current.isEmpty {
                words.append(String(current))
                current = String.UnicodeScalarView()
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    /// w:word, b:word word, c:3 code points of " word "; distinct by code points as Python's set of
    /// str (a Set<String> would merge canonically equivalent features: composed vs decomposed Hangul).
    public static func featureStrings(_ text: String) -> [String] {
        let found = words(text)
        var features: [String] = found.map { "w:\($0)" }
        if found.count > 1 { for i in 0..<(found.count - 1) { features.append("b:\(found[i]) \(found[i + 1])") } }
        for w in found {
            let padded = Array(" \(w) ".unicodeScalars)
            for i in 0..<(padded.count - 2) { features.append("c:" + String(String.UnicodeScalarView(padded[i..<(i + 3)]))) }
        }
        var seen = Set<[UInt32]>()
        return features.filter { seen.insert(PyText.key($0)).inserted }
    }

    /// Bucket -> weight, L2-normalized over distinct buckets.
    public static func hashed(_ text: String, buckets: Int) -> [Int: Double] {
        let indices = Set(featureStrings(text).map { Int(fnv1a($0) % UInt32(buckets)) })
        if indices.isEmpty { return [:] }
        let value = 1.0 / Double(indices.count).squareRoot()
        return Dictionary(uniqueKeysWithValues: indices.map { ($0, value) })
    }

    /// Whole-request numbers (log_user_chars, log_user_lines, log_system_chars, digit_share).
    public static func dense(system: String, user: String) -> [Double] {
        let length = user.unicodeScalars.count
        let digits = user.unicodeScalars.filter(isDigit).count
        let lines = user.unicodeScalars.filter { $0 == "\n" }.count
        return [log1p(Double(length)) / 12, log1p(Double(lines)) / 8, log1p(Double(system.unicodeScalars.count)) / 10,
                length > 0 ? Double(digits) / Double(length) : 0]
    }

    /// The truncated request as the featurizer reads it (system and user on separate lines).
    public static func classifierText(system: String, user: String) -> String {
        system.isEmpty ? user : "\(system)\n\(user)"
    }
}
