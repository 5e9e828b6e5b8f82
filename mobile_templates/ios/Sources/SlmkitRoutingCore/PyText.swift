import Foundation

/// Python's `str` operations the routing contract uses, code point by code point. Swift's own
/// (`lowercased()`, `trimmingCharacters(in:)`, `==` and hashing of `String`) differ on inputs the
/// golden vectors pin: no final sigma, no U+001C-U+001F whitespace, and canonically equivalent strings
/// compare equal (composed vs decomposed Hangul, U+F900 vs U+8C48), which Python keeps apart.
public enum PyText {
    /// `str.isspace()` for one code point: White_Space plus U+001C-U+001F (bidi class B/S in Python).
    public static func isSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    /// `str.isalnum()` for one code point: letters (L*) and numbers (Nd, Nl, No).
    public static func isAlnum(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// `str.strip()`, or `str.strip(chars)` with `chars` given.
    public static func strip(_ text: String, _ chars: Set<Unicode.Scalar>? = nil) -> String {
        let scalars = Array(text.unicodeScalars)
        let drop: (Unicode.Scalar) -> Bool = chars.map { set in { set.contains($0) } } ?? isSpace
        var start = 0, end = scalars.count
        while start < end && drop(scalars[start]) { start += 1 }
        while end > start && drop(scalars[end - 1]) { end -= 1 }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    /// `str.lower()`: each code point's full lowercase mapping (SpecialCasing), and capital sigma
    /// becomes final sigma after a cased letter not followed by one (Unicode 15 section 3.13,
    /// CPython's `handle_capital_sigma`).
    public static func lower(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, scalar) in scalars.enumerated() {
            if scalar.value == 0x3A3 {
                out.append(finalSigma(scalars, i) ? "\u{3C2}" : "\u{3C3}")
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    static func finalSigma(_ scalars: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && scalars[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && scalars[j].properties.isCased else { return false }
        j = i + 1
        while j < scalars.count && scalars[j].properties.isCaseIgnorable { j += 1 }
        return j == scalars.count || !scalars[j].properties.isCased
    }

    /// runtime/validation.py `relative_inside`: a normalised relative POSIX path inside its folder
    /// (no `..`, no absolute path, no `~`, no backslash, no NUL, no `.` or empty segment).
    public static func isRelativeInside(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && !path.hasPrefix("/") && !path.hasPrefix("~") && !path.contains("\\") && !path.contains("\u{0}")
            && parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    /// Python's `==` on str: the same code points (Swift's `==` is canonical equivalence).
    public static func same(_ a: String, _ b: String) -> Bool { a.unicodeScalars.elementsEqual(b.unicodeScalars) }

    /// A hashable key with Python's identity (code points), for sets and dictionaries of text.
    public static func key(_ text: String) -> [UInt32] { text.unicodeScalars.map(\.value) }
}

/// Patterns written in Python `re` syntax, compiled by ICU (NSRegularExpression) with Python's
/// meaning: `\w` `\W` `\b` `\B` `\s` `\S` become explicit classes (ICU's `\w` includes marks and
/// connector punctuation, its `\s` lacks U+001C-U+001F), and only "\n" ends a line for `^ $ .`.
/// `\d` is Nd in both and is kept. Case-insensitive patterns do not use ICU's full case folding (ß
/// would match "ss", ﬁ "fi"): each letter becomes the class of what Python's re.IGNORECASE matches
/// (its simple case mappings plus sre's equivalences: i ı İ, s ſ, k K, σ ς).
public enum PyRegex {
    static let word = "\\p{L}\\p{N}_"
    static let space = "\\p{White_Space}\\x{1C}-\\x{1F}"
    /// Letters sre treats as equal beyond simple lower/upper case (Lib/re/_casefix.py, Python 3.11).
    static let equivalents: [Unicode.Scalar: String] = ["i": "\u{131}\u{130}", "s": "\u{17F}", "k": "\u{212A}",
                                                        "\u{3C3}": "\u{3C2}\u{3A3}", "\u{3C2}": "\u{3C3}\u{3A3}"]

    /// What Python's IGNORECASE matches for the letter `c`, as class members ("" when case does not apply).
    static func caseClass(_ c: Unicode.Scalar) -> String {
        guard c.properties.changesWhenCaseMapped || equivalents[c] != nil else { return "" }
        var members = String(c)
        for form in [c.properties.lowercaseMapping, c.properties.uppercaseMapping] where form.unicodeScalars.count == 1 && form != String(c) {
            members += form
        }
        let lower = c.properties.lowercaseMapping.unicodeScalars.count == 1 ? c.properties.lowercaseMapping.unicodeScalars.first! : c
        members += equivalents[lower] ?? ""
        return members
    }

    public static func translate(_ pattern: String, ignoreCase: Bool = false) -> String {
        var out = ""
        var inClass = false
        var chars = Array(pattern)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count {
                let next = chars[i + 1]
                i += 2
                switch (next, inClass) {
                case ("w", false): out += "[\(word)]"
                case ("w", true): out += word
                case ("W", false): out += "[^\(word)]"
                case ("s", false): out += "[\(space)]"
                case ("s", true): out += space
                case ("S", false): out += "[^\(space)]"
                case ("b", false): out += "(?:(?<=[\(word)])(?![\(word)])|(?<![\(word)])(?=[\(word)]))"
                case ("B", false): out += "(?:(?<=[\(word)])(?=[\(word)])|(?<![\(word)])(?![\(word)]))"
                case ("W", true), ("S", true), ("b", true), ("B", true):
                    preconditionFailure("\\\(next) inside a character class has no translation: \(pattern)")
                default: out += "\\\(next)"
                }
                continue
            }
            if ignoreCase, let scalar = c.unicodeScalars.first, c.unicodeScalars.count == 1 {
                let members = caseClass(scalar)
                if !members.isEmpty {
                    if inClass, i + 2 < chars.count, chars[i + 1] == "-", chars[i + 2] != "]",
                       let end = chars[i + 2].unicodeScalars.first, ("a"..."z").contains(scalar), ("a"..."z").contains(end) {
                        // an ASCII range: both cases, and the equivalents of the letters it spans
                        let upper = Character(Unicode.Scalar(scalar.value - 32)!), upperEnd = Character(Unicode.Scalar(end.value - 32)!)
                        out += "\(c)-\(chars[i + 2])\(upper)-\(upperEnd)"
                        for letter in ["i", "s", "k"] as [Unicode.Scalar] where (scalar...end).contains(letter) { out += equivalents[letter]! }
                        i += 3
                        continue
                    }
                    out += inClass ? members : "[\(members)]"
                    i += 1
                    continue
                }
            }
            if c == "[" && !inClass {
                inClass = true
                out.append(c)
                // A "]" right after "[" or "[^" is a literal member, as in Python.
                if i + 1 < chars.count && chars[i + 1] == "^" { out.append("^"); i += 1 }
                if i + 1 < chars.count && chars[i + 1] == "]" { out += "\\]"; i += 1 }
            } else if c == "]" && inClass {
                inClass = false
                out.append(c)
            } else {
                out.append(c)
            }
            i += 1
        }
        chars.removeAll()
        return out
    }

    /// The pattern translated and compiled (`.caseInsensitive` means Python's IGNORECASE, see above); a
    /// pattern that does not compile is a programming error.
    public static func compile(_ pattern: String, _ options: NSRegularExpression.Options = []) -> NSRegularExpression {
        let ignoreCase = options.contains(.caseInsensitive)
        return try! NSRegularExpression(pattern: translate(pattern, ignoreCase: ignoreCase),
                                        options: options.subtracting(.caseInsensitive).union(.useUnixLineSeparators))
    }
}
