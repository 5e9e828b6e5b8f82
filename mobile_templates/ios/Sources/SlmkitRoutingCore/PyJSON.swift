import Foundation

/// A JSON value as Python's `json.loads` reads it (its C scanner): NaN, Infinity and -Infinity
/// accepted, control characters in strings refused, objects keep every pair in document order (a
/// repeated key: the last value wins where the object is read as a dict, `PyJSON.dict`), numbers as
/// Double with `integral` telling Python's int (no fraction, no exponent) from float (an integer too
/// large for a Double becomes infinity; Python's parse_confidence reads it as out of range too). A lone surrogate escape (`"\ud800"`) cannot live in a Swift String and becomes U+FFFD:
/// it matches no label or key either way. JSONSerialization refuses NaN and differs by platform.
public indirect enum JSONValue {
    case null
    case bool(Bool)
    case number(Double, integral: Bool)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var number: Double? { if case .number(let n, _) = self { return n }; return nil }
    /// Python's int (StrictInt): an integral literal that fits an Int.
    public var int: Int? {
        if case .number(let n, true) = self, let i = Int(exactly: n) { return i }
        return nil
    }
    public var pairs: [(String, JSONValue)]? { if case .object(let p) = self { return p }; return nil }
}

public struct JSONError: Error, CustomStringConvertible {
    public let description: String
}

public enum PyJSON {
    /// `json.loads(text)`. Throws JSONError where Python raises JSONDecodeError.
    public static func loads(_ text: String) throws -> JSONValue {
        var reader = Reader(Array(text.unicodeScalars))
        reader.skipSpace()
        let value = try reader.value()
        reader.skipSpace()
        if reader.pos != reader.s.count { throw JSONError(description: "extra data at \(reader.pos)") }
        return value
    }

    /// An object's pairs as Python's dict keeps them: first position of each key (by code points), last value.
    public static func dict(_ pairs: [(String, JSONValue)]) -> [(String, JSONValue)] {
        var order: [[UInt32]] = []
        var values: [[UInt32]: (String, JSONValue)] = [:]
        for (key, value) in pairs {
            let k = PyText.key(key)
            if values[k] == nil { order.append(k) }
            values[k] = (key, value)
        }
        return order.map { values[$0]! }
    }

    /// Nesting deeper than this is not JSON here (runtime/router/parse.py MAX_JSON_DEPTH; Python's own
    /// limit is its recursion limit) and an integer literal longer than this many digits neither
    /// (Python's int_max_str_digits, 4300 by default).
    public static let maxDepth = 512
    public static let maxIntegerDigits = 4300

    struct Reader {
        let s: [Unicode.Scalar]
        var pos = 0
        var depth = 0
        init(_ s: [Unicode.Scalar]) { self.s = s }

        mutating func skipSpace() {
            while pos < s.count && [" ", "\t", "\n", "\r"].contains(s[pos]) { pos += 1 }
        }

        func fail(_ why: String) -> JSONError { JSONError(description: "\(why) at \(pos)") }

        func startsWith(_ word: String) -> Bool {
            let w = Array(word.unicodeScalars)
            return pos + w.count <= s.count && Array(s[pos..<(pos + w.count)]) == w
        }

        mutating func value() throws -> JSONValue {
            guard pos < s.count else { throw fail("expecting value") }
            switch s[pos] {
            case "{": return try object()
            case "[": return try array()
            case "\"": return .string(try string())
            case "n" where startsWith("null"): pos += 4; return .null
            case "t" where startsWith("true"): pos += 4; return .bool(true)
            case "f" where startsWith("false"): pos += 5; return .bool(false)
            case "N" where startsWith("NaN"): pos += 3; return .number(.nan, integral: false)
            case "I" where startsWith("Infinity"): pos += 8; return .number(.infinity, integral: false)
            case "-" where startsWith("-Infinity"): pos += 9; return .number(-.infinity, integral: false)
            default: return try number()
            }
        }

        /// One level deeper (an object or array opens); refused past PyJSON.maxDepth.
        mutating func enter() throws {
            depth += 1
            if depth > PyJSON.maxDepth { throw fail("nested deeper than \(PyJSON.maxDepth)") }
        }

        mutating func object() throws -> JSONValue {
            var pairs: [(String, JSONValue)] = []
            try enter()
            defer { depth -= 1 }
            pos += 1
            skipSpace()
            if pos < s.count && s[pos] == "}" { pos += 1; return .object(pairs) }
            while true {
                guard pos < s.count && s[pos] == "\"" else { throw fail("expecting property name") }
                let key = try string()
                skipSpace()
                guard pos < s.count && s[pos] == ":" else { throw fail("expecting ':'") }
                pos += 1
                skipSpace()
                pairs.append((key, try value()))
                skipSpace()
                guard pos < s.count else { throw fail("expecting ',' or '}'") }
                if s[pos] == "}" { pos += 1; return .object(pairs) }
                guard s[pos] == "," else { throw fail("expecting ','") }
                pos += 1
                skipSpace()
            }
        }

        mutating func array() throws -> JSONValue {
            var items: [JSONValue] = []
            try enter()
            defer { depth -= 1 }
            pos += 1
            skipSpace()
            if pos < s.count && s[pos] == "]" { pos += 1; return .array(items) }
            while true {
                items.append(try value())
                skipSpace()
                guard pos < s.count else { throw fail("expecting ',' or ']'") }
                if s[pos] == "]" { pos += 1; return .array(items) }
                guard s[pos] == "," else { throw fail("expecting ','") }
                pos += 1
                skipSpace()
            }
        }

        func isDigit(_ i: Int) -> Bool { i < s.count && ("0"..."9").contains(s[i]) }

        mutating func number() throws -> JSONValue {
            let start = pos
            var integral = true
            if pos < s.count && s[pos] == "-" { pos += 1 }
            if pos < s.count && s[pos] == "0" {
                pos += 1
            } else if pos < s.count && ("1"..."9").contains(s[pos]) {
                while isDigit(pos) { pos += 1 }
            } else {
                pos = start
                throw fail("expecting value")
            }
            if pos < s.count && s[pos] == "." && isDigit(pos + 1) {
                integral = false
                pos += 1
                while isDigit(pos) { pos += 1 }
            }
            if pos < s.count && (s[pos] == "e" || s[pos] == "E") {
                var e = pos + 1
                if e < s.count && (s[e] == "+" || s[e] == "-") { e += 1 }
                if isDigit(e) {
                    integral = false
                    pos = e
                    while isDigit(pos) { pos += 1 }
                }
            }
            let digits = s[start..<pos].filter { ("0"..."9").contains($0) }.count
            if integral && digits > PyJSON.maxIntegerDigits { throw fail("an integer of \(digits) digits") }
            return .number(Double(String(String.UnicodeScalarView(s[start..<pos]))) ?? .nan, integral: integral)
        }

        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= s.count, s[at..<(at + 4)].allSatisfy({ $0.properties.isASCIIHexDigit }) else { return nil }
            return UInt32(String(String.UnicodeScalarView(s[at..<(at + 4)])), radix: 16)
        }

        mutating func string() throws -> String {
            var out = String.UnicodeScalarView()
            pos += 1
            while true {
                guard pos < s.count else { throw fail("unterminated string") }
                let c = s[pos]
                pos += 1
                if c == "\"" { return String(out) }
                if c.value < 0x20 { throw fail("invalid control character") }
                if c != "\\" { out.append(c); continue }
                guard pos < s.count else { throw fail("unterminated string") }
                let e = s[pos]
                pos += 1
                switch e {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "/": out.append("/")
                case "b": out.append("\u{8}")
                case "f": out.append("\u{C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    guard var code = hex4(pos) else { throw fail("invalid \\uXXXX escape") }
                    pos += 4
                    if (0xD800...0xDBFF).contains(code), pos + 1 < s.count, s[pos] == "\\", s[pos + 1] == "u",
                       let low = hex4(pos + 2), (0xDC00...0xDFFF).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        pos += 6
                    }
                    out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw fail("invalid \\escape")
                }
            }
        }
    }
}
