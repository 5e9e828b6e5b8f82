import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking  // URLSession off Apple platforms (the Linux build of this core)
#endif

/// Cloud tiers over URLSession: any OpenAI-compatible `/chat/completions`, and the Anthropic
/// Messages API. Keys come from the app at run time, looked up by the tier's `api_key_env` name;
/// they are never part of the bundle or of a trace.
public final class CloudEngine: TierEngine {
    let tier: TierSpec
    let keys: [String: String]
    let session: URLSession

    public init(tier: TierSpec, keys: [String: String], session: URLSession = .shared) {
        self.tier = tier; self.keys = keys; self.session = session
    }

    func key() throws -> String? {
        guard let name = tier.apiKeyEnv else { return nil }
        guard let key = keys[name] else { throw TierError("no API key '\(name)' supplied for tier \(tier.name)") }
        return key
    }

    func post(_ url: String, _ headers: [String: String], _ body: [String: Any]) async throws -> [String: Any] {
        guard let target = URL(string: url) else { throw TierError("bad URL \(url)") }
        var request = URLRequest(url: target, timeoutInterval: tier.timeoutS)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let data: Data
        let response: URLResponse
        do { (data, response) = try await session.data(for: request) } catch let error as URLError where error.code == .timedOut {
            throw TierError("timeout after \(tier.timeoutS) s")
        } catch {
            throw TierError("cannot reach \(target.host ?? url) (\(type(of: error)))")
        }
        if let http = response as? HTTPURLResponse, http.statusCode >= 400 {
            throw TierError("HTTP \(http.statusCode) from \(target.host ?? url)")
        }
        guard let parsed = try? JSONSerialization.jsonObject(with: data) else { throw TierError("malformed response: not JSON") }
        guard let object = parsed as? [String: Any] else { throw TierError("malformed response: not a JSON object") }
        return object
    }

    public func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
        let start = Pipeline.now()
        let wire = messages.map { ["role": $0.role, "content": $0.content] }
        switch tier.backend {
        case "openai":
            var headers: [String: String] = [:]
            if let key = try key() { headers["Authorization"] = "Bearer \(key)" }
            let data = try await post((tier.baseURL ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/chat/completions",
                                      headers, ["model": tier.model ?? "", "messages": wire, "max_tokens": maxTokens, "temperature": 0])
            guard let choices = data["choices"] as? [[String: Any]], let message = choices.first?["message"] as? [String: Any] else {
                throw TierError("malformed response: no choices[0].message.content")
            }
            let usage = data["usage"] as? [String: Any] ?? [:]
            return Generation(text: message["content"] as? String ?? "", inputTokens: usage["prompt_tokens"] as? Int ?? 0,
                              outputTokens: usage["completion_tokens"] as? Int ?? 0, latencyMs: Pipeline.now() - start,
                              model: data["model"] as? String ?? tier.model ?? "")
        case "anthropic":
            var headers = ["anthropic-version": "2023-06-01"]
            if let key = try key() { headers["x-api-key"] = key }
            let system = messages.filter { $0.role == "system" }.map(\.content).joined(separator: "\n\n")
            var body: [String: Any] = ["model": tier.model ?? "", "max_tokens": maxTokens,
                                       "messages": wire.filter { $0["role"] != "system" }]
            if !system.isEmpty { body["system"] = system }
            let base = (tier.baseURL ?? "https://api.anthropic.com/v1").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            let data = try await post(base + "/messages", headers, body)
            guard let content = data["content"] as? [[String: Any]] else { throw TierError("malformed response: no content[].text") }
            let usage = data["usage"] as? [String: Any] ?? [:]
            return Generation(text: content.filter { $0["type"] as? String == "text" }.compactMap { $0["text"] as? String }.joined(),
                              inputTokens: usage["input_tokens"] as? Int ?? 0, outputTokens: usage["output_tokens"] as? Int ?? 0,
                              latencyMs: Pipeline.now() - start, model: data["model"] as? String ?? tier.model ?? "")
        default:
            throw TierError("backend \(tier.backend) is not a cloud backend")
        }
    }
}

/// The offline stand-in (runtime/backends/simulated.py): models latency and cost, never pretends to answer.
public final class SimulatedEngine: TierEngine {
    let tier: TierSpec
    public init(tier: TierSpec) { self.tier = tier }

    public func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
        let profile = tier.simulated ?? [:]
        let ttft = (profile["ttft_ms"] as? NSNumber)?.doubleValue ?? 400
        let speed = (profile["tokens_per_s"] as? NSNumber)?.doubleValue ?? 80
        let output = min((profile["output_tokens"] as? NSNumber)?.intValue ?? 200, maxTokens)
        let prompt = messages.reduce(0) { $0 + max(1, ($1.content.unicodeScalars.count + 3) / 4) }
        let latency = ttft + 1000 * Double(output) / speed
        let text = "[simulated answer from tier '\(tier.name)' (\(tier.model ?? "no model")): no model was called; "
            + "\(output) output tokens and \(String(format: "%.0f", latency)) ms are modelled]"
        return Generation(text: text, inputTokens: prompt, outputTokens: output, latencyMs: latency, model: tier.model ?? "simulated",
                          simulated: true)
    }
}
