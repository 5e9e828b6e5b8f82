import Foundation

/// Prompt rendering (runtime/prompts.py). Lengths are Unicode code points (unicodeScalars), never
/// grapheme clusters or UTF-16 units.
public enum Prompts {
    public static func codePoints(_ text: String) -> Int { text.unicodeScalars.count }

    /// The first `head` code points, plus " … " and the last `tail` when the text is longer than both.
    public static func truncate(_ text: String, head: Int, tail: Int = 0) -> String {
        let scalars = Array(text.unicodeScalars)
        if scalars.count <= head + tail { return text }
        var out = String(String.UnicodeScalarView(scalars[0..<head]))
        if tail > 0 { out += " … " + String(String.UnicodeScalarView(scalars[(scalars.count - tail)...])) }
        return out
    }

    /// System cut to systemChars; user part = each earlier user turn cut to historyChars (oldest first), then
    /// the last one cut to userChars (+ userTailChars), one per line.
    public static func routerInput(system: String, user: String, truncation t: Truncation,
                                   earlier: [String] = []) -> (String, String) {
        let parts = earlier.map { truncate($0, head: t.historyChars) } + [truncate(user, head: t.userChars, tail: t.userTailChars)]
        return (truncate(system, head: t.systemChars), parts.joined(separator: "\n"))
    }

    public static func requestRouterInput(_ request: Request, truncation t: Truncation) -> (String, String) {
        routerInput(system: request.system, user: request.user, truncation: t, earlier: request.earlierUserTurns(t.historyTurns))
    }

    /// The whole user text read (earlier user turns, then the last), uncut: its length is a feature.
    public static func conversationUser(_ request: Request, truncation t: Truncation) -> String {
        (request.earlierUserTurns(t.historyTurns) + [request.user]).joined(separator: "\n")
    }

    /// One pass over the template: values are inserted literally, unknown placeholders stay.
    public static func fill(_ template: String, _ values: [String: String]) -> String {
        let pattern = try! NSRegularExpression(pattern: "\\{([a-z_]+)\\}")
        let ns = template as NSString
        var out = ""
        var last = 0
        for match in pattern.matches(in: template, range: NSRange(location: 0, length: ns.length)) {
            out += ns.substring(with: NSRange(location: last, length: match.range.location - last))
            let name = ns.substring(with: match.range(at: 1))
            out += values[name] ?? ns.substring(with: match.range)
            last = match.range.location + match.range.length
        }
        return out + ns.substring(from: last)
    }

    public static func routerPrompt(_ template: String, system: String, user: String, truncation: Truncation,
                                    earlier: [String] = []) -> String {
        let (s, u) = routerInput(system: system, user: user, truncation: truncation, earlier: earlier)
        return fill(template, ["system": s, "user": u])
    }

    public static func ratingPrompt(_ template: String, question: String, answer: String) -> String {
        fill(template, ["question": question, "answer": answer])
    }
}
