import Foundation

/// A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by rendering
/// the model's own Jinja template around marker messages and checked against it): the text before the
/// first message, between each pair of consecutive roles, and after the last one (which includes the
/// generation prompt). No template engine runs on the phone.
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

    public func render(_ messages: [Message]) throws -> String {
        var list = messages
        if systemAsUserPrefix, let first = list.first, first.role == "system" {
            let rest = Array(list.dropFirst())
            if let user = rest.first, user.role == "user" {
                list = [Message(role: "user", content: first.content + "\n\n" + user.content)] + rest.dropFirst()
            } else {
                list = rest
            }
        }
        var out = ""
        var previous: String? = nil
        for m in list {
            let joint = previous == nil ? start[m.role] : between["\(previous!)>\(m.role)"]
            guard let joint else { throw TierError("the chat format has no way to put \(m.role) after \(previous ?? "the start")") }
            out += joint + m.content
            previous = m.role
        }
        if let last = previous { out += end[last] ?? "" }
        return out
    }
}
