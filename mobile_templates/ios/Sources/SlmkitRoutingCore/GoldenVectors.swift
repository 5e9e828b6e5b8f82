import Foundation

/// Runs the shared golden vectors (the .jsonl files of runtime/vectors, copied into the bundle)
/// through this port. The Python runtime and the Kotlin core run the same files.
public enum GoldenVectors {
    public struct Outcome { public let file: String; public let name: String; public let detail: String? }

    public static let files = ["router_output", "rating", "policy", "label_probabilities", "prompts", "features", "options",
                               "option_choice", "rating_distribution", "token_confidence", "trained_head", "conversation",
                               "grouped_probabilities", "date_slots", "router_head", "pipeline"]
    /// Written by `slmkit package`: the model's chat template flattened (vs Jinja's rendering), and the
    /// Python router's decisions with the bundle's head (paths relative to the vectors folder's parent).
    public static let bundleFiles = ["chat_format", "router_decisions"]
    static var root = URL(fileURLWithPath: ".")
    static var routerSpec: RouterSpec? = nil
    static var heads: [String: LinearHead] = [:]

    static func close(_ a: Double?, _ b: Double?, _ tolerance: Double = 1e-9) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a - b) <= tolerance * max(1, abs(b))
    }

    static func double(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

    static func check(_ file: String, _ row: [String: Any]) -> String? {
        let expected = row["expected"]
        switch file {
        case "router_output":
            let parsed = RouterParse.parse(row["text"] as! String, labels: row["labels"] as! [String])
            guard let e = expected as? [String: Any] else { return parsed == nil ? nil : "expected unparsable, got \(parsed!)" }
            guard let p = parsed else { return "expected \(e["label"]!), got unparsable" }
            if p.label != e["label"] as? String { return "label \(p.label) != \(e["label"]!)" }
            return close(p.confidence, double(e["confidence"])) ? nil : "confidence \(String(describing: p.confidence))"
        case "rating":
            let e = expected as! [String: Any]
            let (rating, parsed) = Confidence.ratingOrDefault(row["text"] as! String, unparsableRating: double(row["unparsable_rating"])!)
            let escalate = Confidence.shouldEscalate(rating, threshold: double(row["threshold"])!)
            return rating == double(e["rating"]) && parsed == e["parsed"] as? Bool && escalate == e["escalate"] as? Bool
                ? nil : "got \(rating) \(parsed) \(escalate)"
        case "policy":
            let d = row["decision"] as! [String: Any]
            guard let policy = try? PolicySpec(json: row["policy"] as! [String: Any]) else { return "bad policy" }
            let tier = Policy.chooseTier(RouteDecision(label: d["label"] as? String, confidence: double(d["confidence"])!), policy).tier
            return tier == (expected as! [String: Any])["tier"] as? String ? nil : "tier \(tier)"
        case "label_probabilities":
            let labels = row["labels"] as! [String]
            let bias = row["bias"] as! [String: Any]
            let logits = (row["logits"] as! [Any]).enumerated().map { i, x -> Double in
                ((x as? String) == "-inf" ? -Double.infinity : double(x)!) + (double(bias[labels[i]]) ?? 0)
            }
            let decision = Decisions.fromLogits(labels, logits, temperature: double(row["temperature"])!)
            let e = expected as! [String: Any]
            if decision.label != e["label"] as? String { return "label \(decision.label ?? "nil")" }
            if !close(decision.confidence, double(e["confidence"])) { return "confidence \(decision.confidence)" }
            for (label, p) in e["probabilities"] as! [String: Any] where !close(decision.probabilities[label], double(p)) {
                return "p(\(label))"
            }
            return nil
        case "grouped_probabilities":
            let labels = row["labels"] as! [String]
            let logits = (row["logits"] as! [Any]).map { ($0 as? String) == "-inf" ? -Double.infinity : double($0)! }
            let decision = Decisions.fromGroupedLogits(labels, classes: row["classes"] as! [String], logits,
                                                       groups: row["groups"] as! [String: String], temperature: double(row["temperature"])!)
            let e = expected as! [String: Any]
            if decision.label != e["label"] as? String { return "label \(decision.label ?? "nil")" }
            if decision.raw.split(separator: " ").first.map(String.init) != e["top_class"] as? String { return "top class \(decision.raw)" }
            if !close(decision.confidence, double(e["confidence"])) { return "confidence \(decision.confidence)" }
            for (label, p) in e["probabilities"] as! [String: Any] where !close(decision.probabilities[label], double(p)) {
                return "p(\(label))"
            }
            return nil
        case "prompts":
            let text: String
            if row["kind"] as? String == "router" {
                text = Prompts.routerPrompt(row["template"] as! String, system: row["system"] as! String, user: row["user"] as! String,
                                            truncation: Truncation(json: row["truncation"] as! [String: Any]),
                                            earlier: row["earlier"] as? [String] ?? [])
            } else {
                text = Prompts.ratingPrompt(row["template"] as! String, question: row["question"] as! String, answer: row["answer"] as! String)
            }
            return text == expected as? String ? nil : "prompt differs: \(text)"
        case "features":
            let e = expected as! [String: Any]
            if let input = row["fnv1a_input"] as? String {
                return Double(Features.fnv1a(input)) == double(e["fnv1a"]) ? nil : "fnv1a \(Features.fnv1a(input))"
            }
            let earlier = row["earlier"] as? [String] ?? []
            let (system, user) = Prompts.routerInput(system: row["system"] as! String, user: row["user"] as! String,
                                                     truncation: Truncation(json: row["truncation"] as! [String: Any]),
                                                     earlier: earlier)
            let text = Features.classifierText(system: system, user: user)
            if text != e["text"] as? String { return "text differs: \(text)" }
            if Features.featureStrings(text).count != e["feature_count"] as? Int { return "feature_count" }
            let hashed = Features.hashed(text, buckets: row["buckets"] as! Int)
            if hashed.keys.sorted() != (e["indices"] as! [Int]) { return "indices" }
            if !hashed.values.allSatisfy({ close($0, double(e["value"]), 1e-6) }) { return "value" }
            let dense = Features.dense(system: row["system"] as! String,
                                       user: (earlier + [row["user"] as! String]).joined(separator: "\n"))
            let want = (e["dense"] as! [Any]).map { double($0)! }
            return dense.count == want.count && zip(dense, want).allSatisfy({ close($0, $1, 1e-6) }) ? nil : "dense \(dense)"
        case "conversation":
            let e = expected as! [String: Any]
            if row["kind"] as? String == "earlier" {
                let history = (row["history"] as! [[String: Any]]).map { Message(role: $0["role"] as! String, content: $0["content"] as! String) }
                let got = Request(user: row["user"] as! String, history: history).earlierUserTurns(row["history_turns"] as! Int)
                return got == (e["earlier"] as! [String]) ? nil : "earlier \(got)"
            }
            guard let policy = try? PolicySpec(json: row["policy"] as! [String: Any]) else { return "bad policy" }
            func decision(_ key: String) -> RouteDecision {
                let d = row[key] as! [String: Any]
                return RouteDecision(label: d["label"] as? String, confidence: double(d["confidence"])!)
            }
            let (chosen, which) = Conversation.costlier(last: decision("last_message"), whole: decision("conversation"),
                                                        policy: policy, tiers: row["tiers"] as! [String])
            let tier = Policy.chooseTier(chosen, policy).tier
            return which == e["chosen"] as? String && tier == e["tier"] as? String ? nil : "chose \(which) (\(tier))"
        case "router_decisions":
            let headPath = row["head"] as! String
            let header = root.appendingPathComponent(headPath)
            if heads[headPath] == nil {
                let blob = header.deletingPathExtension().appendingPathExtension("f16")
                heads[headPath] = try? LinearHead(header: Data(contentsOf: header), blob: Data(contentsOf: blob))
            }
            guard let head = heads[headPath], let spec = routerSpec, let router = try? ClassifierRouter(spec: spec, head: head),
                  let decision = try? router.decide(Request(user: row["user"] as! String, system: row["system"] as! String)) else {
                return "router head \(headPath) does not load"
            }
            let e = expected as! [String: Any]
            if decision.label != e["label"] as? String { return "label \(decision.label ?? "nil")" }
            for (label, p) in e["probabilities"] as! [String: Any] where !close(decision.probabilities[label], double(p), 1e-6) {
                return "p(\(label))"
            }
            return nil
        case "options":
            let e = expected as! [String: Any]
            let prompt = row["prompt"] as! String
            let options = Options.extract(prompt)
            if options != e["options"] as? [String] { return "options \(String(describing: options))" }
            if Options.answerPrefix(prompt) != e["answer_prefix"] as? String { return "prefix \(Options.answerPrefix(prompt))" }
            for (option, text) in e["answer_text"] as! [String: String] where Options.answerText(prompt, option: option) != text {
                return "answer for \(option): \(Options.answerText(prompt, option: option))"
            }
            return nil
        case "option_choice":
            let continuation = VectorContinuation(row)
            guard let choice = try? Options.choose(continuation, options: row["options"] as! [[Int]]) else { return "choose threw" }
            let e = expected as! [String: Any]
            if choice.index != e["index"] as? Int || continuation.appended != e["appended"] as! [Int] {
                return "index \(choice.index) appended \(continuation.appended)"
            }
            if !close(choice.margin, double(e["margin"])) { return "margin \(choice.margin)" }
            return close(choice.probability, double(e["probability"])) ? nil : "probability \(choice.probability)"
        case "trained_head":
            let x: [String: Double]
            if row["kind"] as? String == "option" {
                x = TrainedHead.optionFeatures(probability: double(row["probability"])!, margin: double(row["margin"])!,
                                               count: row["count"] as! Int, promptTokens: row["prompt_tokens"] as! Int)
            } else {
                x = TrainedHead.answerFeatures(logprobs: (row["logprobs"] as! [NSNumber]).map(\.doubleValue),
                                               margins: (row["margins"] as! [NSNumber]).map(\.doubleValue),
                                               promptTokens: row["prompt_tokens"] as! Int)
            }
            let e = expected as! [String: Any]
            for (name, want) in e["features"] as! [String: Any] where !close(x[name], double(want)) {
                return "feature \(name) \(String(describing: x[name]))"
            }
            guard let head = try? TrainedHead(json: row["head"] as! [String: Any]) else { return "head refused" }
            return close(head.value(x), double(e["value"])) ? nil : "value \(head.value(x))"
        case "rating_distribution":
            guard let distribution = try? RatingDistribution.distribution(VectorContinuation(row)) else { return "distribution threw" }
            let e = expected as! [String: Any]
            for (rating, p) in e["distribution"] as! [String: Any] where !close(distribution[Int(rating)!], double(p)) {
                return "p(\(rating))"
            }
            let mean = RatingDistribution.expected(distribution)
            return close(mean, double(e["expected_rating"])) ? nil : "expected rating \(mean)"
        case "token_confidence":
            if let feature = row["feature"] as? String {
                let value = TokenConfidence.confidence(feature, logprobs: (row["logprobs"] as! [Any]).map { double($0)! },
                                                       margins: (row["margins"] as! [Any]).map { double($0)! })
                return close(value, double(expected)) ? nil : "confidence \(String(describing: value))"
            }
            let logits = (row["logits"] as! [Any]).map { Double(Float(double($0)!)) }
            let (logprob, margin) = TokenConfidence.tokenStats(logits, token: row["token"] as! Int)
            let e = expected as! [String: Any]
            return close(logprob, double(e["logprob"])) && close(margin, double(e["margin"])) ? nil : "stats \(logprob) \(margin)"
        case "date_slots":
            let n = row["now"] as! [String: Int]
            let now = ClockTime(year: n["year"]!, month: n["month"]!, day: n["day"]!, hour: n["hour"]!, minute: n["minute"]!,
                                second: n["second"]!)
            let text = DateSlots.fill(row["text"] as! String, now)
            return text == expected as? String ? nil : "filled \(text)"
        case "chat_format":
            let messages = (row["messages"] as! [[String: String]]).map { Message(role: $0["role"]!, content: $0["content"]!) }
            let n = row["now"] as! [String: Int]
            let now = ClockTime(year: n["year"]!, month: n["month"]!, day: n["day"]!, hour: n["hour"]!, minute: n["minute"]!,
                                second: n["second"]!)
            guard let format = try? ChatFormat(json: row["format"] as! [String: Any]), let text = try? format.render(messages, now: now) else {
                return "chat format does not render"
            }
            return text == expected as? String ? nil : "chat prompt differs: \(text)"
        case "router_head":
            let header = Data((row["header_json"] as! String).utf8)  // the exact text a port reads (8.0 stays a float)
            let blob = Data(base64Encoded: row["weights_base64"] as! String)!
            let e = expected as! [String: Any]
            guard let head = try? LinearHead(header: header, blob: blob) else {
                return e["error"] as? Bool == true ? nil : "head refused"
            }
            if e["error"] as? Bool == true { return "head accepted" }
            let input = row["input"] as! [String: Any]
            let sparse = Dictionary(uniqueKeysWithValues: (input["sparse"] as! [String: Any]).map { (Int($0.key)!, double($0.value)!) })
            let logits = head.logits(sparse: sparse, dense: (input["dense"] as! [Any]).map { double($0)! })
            let want = (e["logits"] as! [Any]).map { double($0)! }
            return logits.count == want.count && zip(logits, want).allSatisfy({ close($0, $1, 1e-6) }) ? nil : "logits \(logits)"
        default:
            return "unknown vector file \(file)"
        }
    }

    /// An error an engine did not expect (a platform or native failure), not a TierError.
    struct UnexpectedError: Error { let message: String }

    /// A tier engine answering from a script (vectors/pipeline.jsonl): each call returns the next output, or
    /// every call fails with `fail` (TierError) or `raise` (another Error); calls are recorded as (tier, maxTokens).
    final class ScriptedEngine: TierEngine {
        let tier: String
        var outputs: [String]
        let failure: String?
        let unexpected: String?
        let log: (String, Int) -> Void

        init(tier: String, script: Any?, log: @escaping (String, Int) -> Void) {
            self.tier = tier
            self.log = log
            outputs = script as? [String] ?? []
            failure = (script as? [String: Any])?["fail"] as? String ?? (script == nil ? "no engine" : nil)
            unexpected = (script as? [String: Any])?["raise"] as? String
        }

        func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
            log(tier, maxTokens)
            if let unexpected { throw UnexpectedError(message: unexpected) }
            if let failure { throw TierError(failure) }
            guard !outputs.isEmpty else { throw TierError("script exhausted") }
            return Generation(text: outputs.removeFirst(), inputTokens: 10, outputTokens: 2, latencyMs: 1, model: tier)
        }
    }

    struct FixedRouter: Router {
        let method = "fixed"
        let decision: RouteDecision
        func decide(_ request: Request) throws -> RouteDecision { decision }
    }

    /// vectors/pipeline.jsonl: the whole pipeline (policy, confidence check, escalation, fallback, answer
    /// length, a forced tier) over scripted engines.
    static func checkPipeline(_ row: [String: Any]) async -> String? {
        guard let spec = try? RoutingSpec(data: JSONSerialization.data(withJSONObject: row["spec"]!)) else { return "spec refused" }
        let d = row["decision"] as! [String: Any]
        let router = FixedRouter(decision: RouteDecision(label: d["label"] as? String, confidence: double(d["confidence"])!))
        let scripts = row["engines"] as! [String: Any]
        var calls: [[Any]] = []
        let pipeline = Pipeline(spec: spec, router: router) { tier in
            if let why = (scripts[tier.name] as? [String: Any])?["load"] as? String { throw UnexpectedError(message: why) }
            return ScriptedEngine(tier: tier.name, script: scripts[tier.name]) { calls.append([$0, $1]) }
        }
        let r = row["request"] as! [String: Any]
        let request = Request(user: r["user"] as! String, maxTokens: (r["max_tokens"] as? NSNumber)?.intValue)
        let response = await pipeline.handle(request, forceTier: r["force_tier"] as? String)
        let e = row["expected"] as! [String: Any]
        if let error = e["error"] as? String {
            return response.error?.hasPrefix(error) == true ? nil : "error \(response.error ?? "none")"
        }
        if let error = response.error { return "failed: \(error)" }
        if response.tier != e["tier"] as? String || response.text != e["text"] as? String {
            return "answered \(response.tier ?? "nil"): \(response.text)"
        }
        let steps = response.trace.steps.map { "\($0.tier) \($0.purpose) \($0.ok)" }
        let wantSteps = (e["steps"] as! [[Any]]).map { "\($0[0]) \($0[1]) \(($0[2] as! NSNumber).boolValue)" }
        if steps != wantSteps { return "steps \(steps)" }
        let got = calls.map { "\($0[0]) \($0[1])" }
        let want = (e["calls"] as! [[Any]]).map { "\($0[0]) \(($0[1] as! NSNumber).intValue)" }
        if got != want { return "calls \(got)" }
        let escalations = response.trace.escalations.map { "\($0["from"]!)>\($0["to"]!)" }
        if escalations != (e["escalations"] as! [[String]]).map({ "\($0[0])>\($0[1])" }) { return "escalations \(escalations)" }
        let fallbacks = response.trace.fallbacks.map { "\($0["from"]!)>\(($0["to"] as? String) ?? "nil")" }
        if fallbacks != (e["fallbacks"] as! [[Any]]).map({ "\($0[0])>\(($0[1] as? String) ?? "nil")" }) { return "fallbacks \(fallbacks)" }
        return nil
    }

    /// The scripted engine of the option_choice and rating_distribution vectors (see vectors/README.md).
    final class VectorContinuation: Continuation {
        let row: [String: Any]
        var appended: [Int] = []
        let promptTokens = 0

        init(_ row: [String: Any]) { self.row = row }

        func tokenize(_ text: String) throws -> [Int] { (row["spelled"] as! [String: [Int]])[text]! }

        func append(_ tokens: [Int]) throws { appended += tokens }

        func logprobs() throws -> [Double] {
            let size = row["vocab_size"] as! Int
            let steps = row["next"] as! [[String: Any]]
            let step = steps.first { ($0["after"] as! [Int]) == appended }
            var named: [Int: Double] = [:]
            for (token, p) in (step?["probabilities"] as? [String: Any]) ?? [:] { named[Int(token)!] = double(p)! }
            let rest = (1 - named.values.reduce(0, +)) / Double(size - named.count)
            return (0..<size).map { log(named[$0] ?? rest) }
        }
    }

    public static func run(folder: URL) async throws -> [Outcome] {
        var outcomes: [Outcome] = []
        root = folder.deletingLastPathComponent()
        if let data = try? Data(contentsOf: root.appendingPathComponent("routing.json")) { routerSpec = try? RoutingSpec(data: data).router }
        for file in files + bundleFiles {
            let url = folder.appendingPathComponent("\(file).jsonl")
            if bundleFiles.contains(file) && !FileManager.default.fileExists(atPath: url.path) { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let detail = file == "pipeline" ? await checkPipeline(row) : check(file, row)
                outcomes.append(Outcome(file: file, name: row["name"] as? String ?? "?", detail: detail))
            }
        }
        return outcomes
    }
}
