import Foundation

/// A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by rendering
/// the model's own Jinja template around marker messages and checked against it): the text before the
/// first message, between each pair of consecutive roles, and after the last one (which includes the
/// generation prompt). No template engine runs on the phone. A date the template reads from the clock
/// is a slot `⟦now:FORMAT⟧` in those strings, filled here at render time (see `DateSlots`).
public struct ChatFormat {
    public let start: [String: String]
    public let between: [String: String]
    public let end: [String: String]
    public let stops: [String]
    public let systemAsUserPrefix: Bool

    public init(json: [String: Any]) throws {
        guard let start = json["start"] as? [String: String], let between = json["between"] as? [String: String],
              let end = json["end"] as? [String: String] else { throw SpecError.shape("chat_format.json has the wrong shape") }
        self.start = start
        self.between = between
        self.end = end
        stops = json["stops"] as? [String] ?? []
        systemAsUserPrefix = json["system_as_user_prefix"] as? Bool ?? false
    }

    public init(data: Data) throws {
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SpecError.shape("chat_format.json is not an object")
        }
        try self.init(json: json)
    }

    public func render(_ messages: [Message], now: ClockTime = ClockTime.now()) throws -> String {
        var list = messages
        if systemAsUserPrefix, let first = list.first, first.role == "system" {
            let rest = Array(list.dropFirst())
            if let user = rest.first, user.role == "user" {
                list = [Message(role: "user", content: first.content + "\n\n" + user.content)] + rest.dropFirst()
            } else {
                list = [Message(role: "user", content: first.content)] + rest
            }
        }
        var out = ""
        var previous: String? = nil
        for m in list {
            let joint = previous == nil ? start[m.role] : between["\(previous!)>\(m.role)"]
            guard let joint else { throw TierError("the chat format has no way to put \(m.role) after \(previous ?? "the start")") }
            out += DateSlots.fill(joint, now) + m.content
            previous = m.role
        }
        if let last = previous { out += DateSlots.fill(end[last] ?? "", now) }
        return out
    }
}

/// Local wall-clock time, the fields a chat template's date reads.
public struct ClockTime: Equatable {
    public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    public static func now() -> ClockTime {
        let c = Calendar(identifier: .gregorian).dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date())
        return ClockTime(year: c.year ?? 1970, month: c.month ?? 1, day: c.day ?? 1, hour: c.hour ?? 0,
                         minute: c.minute ?? 0, second: c.second ?? 0)
    }
}

/// `⟦now:FORMAT⟧` slots filled with C-locale strftime (the directives `slmkit package` allows: d m Y y b B a A H M S j %).
public enum DateSlots {
    static let open = "\u{27E6}now:"
    static let close: Character = "\u{27E7}"
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                         "October", "November", "December"]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let monthStart = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]

    public static func fill(_ text: String, _ now: ClockTime) -> String {
        var out = ""
        var rest = Substring(text)
        while let slot = rest.range(of: open) {
            guard let closing = rest[slot.upperBound...].firstIndex(of: close) else { break }
            out += rest[..<slot.lowerBound]
            out += strftime(String(rest[slot.upperBound..<closing]), now)
            rest = rest[rest.index(after: closing)...]
        }
        return out + rest
    }

    static func leap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func dayOfYear(_ t: ClockTime) -> Int {
        monthStart[t.month - 1] + t.day + (t.month > 2 && leap(t.year) ? 1 : 0)
    }

    /// 0 = Monday, as Python's weekday().
    static func weekday(_ t: ClockTime) -> Int {
        let y = t.year - 1
        let days = y * 365 + y / 4 - y / 100 + y / 400 + dayOfYear(t)  // 1 January of year 1 was a Monday
        return (days - 1) % 7
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    public static func strftime(_ format: String, _ t: ClockTime) -> String {
        var out = ""
        var chars = Array(format)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == "%", let d = chars.first else {
                out.append(c)
                continue
            }
            chars = chars.dropFirst()
            switch d {
            case "d": out += pad(t.day, 2)
            case "m": out += pad(t.month, 2)
            case "Y": out += String(t.year)
            case "y": out += pad(t.year % 100, 2)
            case "B": out += months[t.month - 1]
            case "b": out += String(months[t.month - 1].prefix(3))
            case "A": out += weekdays[weekday(t)]
            case "a": out += String(weekdays[weekday(t)].prefix(3))
            case "H": out += pad(t.hour, 2)
            case "M": out += pad(t.minute, 2)
            case "S": out += pad(t.second, 2)
            case "j": out += pad(dayOfYear(t), 3)
            case "%": out += "%"
            default: out += "%" + String(d)
            }
        }
        return out
    }
}
