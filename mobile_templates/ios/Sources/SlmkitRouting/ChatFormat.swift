import Foundation

/// A chat template flattened to strings (`chat_format.json`, written by `slmkit package` by rendering
/// the model's own Jinja template around marker messages): what goes before and after each role's
/// content, the generation prompt, and the strings that end an answer. No template engine on device.
public struct ChatFormat {
    public let bos: String
    public let prefix: [String: String]
    public let suffix: [String: String]
    public let generationPrompt: String
    public let stops: [String]
    public let systemAsUserPrefix: Bool

    public init(data: Data) throws {
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let prefix = o["prefix"] as? [String: String], let suffix = o["suffix"] as? [String: String],
              let generation = o["generation_prompt"] as? String else { throw SpecError.shape("chat_format.json has the wrong shape") }
        bos = o["bos"] as? String ?? ""
        self.prefix = prefix
        self.suffix = suffix
        generationPrompt = generation
        stops = o["stops"] as? [String] ?? []
        systemAsUserPrefix = o["system_as_user_prefix"] as? Bool ?? false
    }

    public func render(_ messages: [Message]) -> String {
        var out = bos
        var pendingSystem = ""
        for m in messages {
            if m.role == "system" && systemAsUserPrefix { pendingSystem = m.content + "\n\n"; continue }
            let content = m.role == "user" ? pendingSystem + m.content : m.content
            if m.role == "user" { pendingSystem = "" }
            out += (prefix[m.role] ?? "") + content + (suffix[m.role] ?? "")
        }
        return out + generationPrompt
    }
}
