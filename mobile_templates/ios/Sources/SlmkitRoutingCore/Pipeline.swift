import Foundation

/// The routing pipeline (runtime/pipeline.py): router -> tier policy -> tier engine -> confidence check
/// -> escalation, with fallback on any failure. A request is never dropped: when every tier fails
/// the Response carries every reason.
public struct Message: Equatable {
    public let role: String
    public let content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

public struct Request {
    public var user: String
    public var system = ""
    public var history: [Message] = []
    public var maxTokens: Int? = nil
    public var id = ""

    public init(user: String, system: String = "", history: [Message] = [], maxTokens: Int? = nil, id: String = "") {
        self.user = user; self.system = system; self.history = history; self.maxTokens = maxTokens; self.id = id
    }

    /// The last `turns` user messages before `user`, oldest first (runtime/request.py).
    public func earlierUserTurns(_ turns: Int) -> [String] {
        guard turns > 0 else { return [] }
        let users = history.filter { $0.role == "user" }.map(\.content)
        return Array(users.suffix(turns))
    }

    public func messages() -> [Message] {
        (system.isEmpty ? [] : [Message(role: "system", content: system)]) + history + [Message(role: "user", content: user)]
    }
}

public struct Generation {
    public let text: String
    public let inputTokens: Int
    public let outputTokens: Int
    public let latencyMs: Double
    public let model: String
    public var simulated = false
    /// Per generated token, from engines with logits: log-probability, and margin over the runner-up.
    public var tokenLogprobs: [Double]? = nil
    public var tokenMargins: [Double]? = nil

    /// What an app's own TierEngine returns.
    public init(text: String, inputTokens: Int, outputTokens: Int, latencyMs: Double, model: String, simulated: Bool = false,
                tokenLogprobs: [Double]? = nil, tokenMargins: [Double]? = nil) {
        self.text = text
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.latencyMs = latencyMs
        self.model = model
        self.simulated = simulated
        self.tokenLogprobs = tokenLogprobs
        self.tokenMargins = tokenMargins
    }
}

/// A tier that failed (timeout, HTTP error, model missing): the pipeline falls through to the next.
public struct TierError: Error { public let reason: String; public init(_ reason: String) { self.reason = reason } }

public protocol TierEngine: AnyObject {
    func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation
    /// The answer with its tokens' log-probabilities; engines that expose logits implement this.
    func generate(_ messages: [Message], maxTokens: Int, logprobs: Bool) async throws -> Generation
    /// Runs `body` on the chat prompt evaluated and open for scoring; engines without logits throw.
    func withContinuation<T>(_ messages: [Message], _ body: (Continuation) throws -> T) async throws -> T
}

public extension TierEngine {
    func generate(_ messages: [Message], maxTokens: Int, logprobs: Bool) async throws -> Generation {
        try await generate(messages, maxTokens: maxTokens)
    }

    func withContinuation<T>(_ messages: [Message], _ body: (Continuation) throws -> T) async throws -> T {
        throw TierError("this engine exposes no logits")
    }
}

public protocol Router {
    var method: String { get }
    func decide(_ request: Request) throws -> RouteDecision
}

public struct Step {
    public let tier: String, purpose: String, ok: Bool, latencyMs: Double
    public var inputTokens = 0, outputTokens = 0
    public var costUsd = 0.0
    public var model = ""
    public var simulated = false
    public var error: String? = nil

    public init(tier: String, purpose: String, ok: Bool, latencyMs: Double, inputTokens: Int = 0, outputTokens: Int = 0,
                costUsd: Double = 0, model: String = "", simulated: Bool = false, error: String? = nil) {
        self.tier = tier
        self.purpose = purpose
        self.ok = ok
        self.latencyMs = latencyMs
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.costUsd = costUsd
        self.model = model
        self.simulated = simulated
        self.error = error
    }
}

/// One request's record; built by the one task handling that request, then read (hence @unchecked Sendable).
public final class Trace: @unchecked Sendable {
    public let requestId: String
    public var routerInput: [String: Any] = [:]
    public var router: RouteDecision?
    public var policyTier: String?
    public var policyReason = ""
    public var steps: [Step] = []
    public var confidence: [[String: Any]] = []
    public var escalations: [[String: Any]] = []
    public var fallbacks: [[String: Any]] = []
    public var finalTier: String?
    public var latencyMs = 0.0
    public var costUsd: Double { steps.reduce(0) { $0 + $1.costUsd } }
    init(requestId: String) { self.requestId = requestId }
}

public struct Response: @unchecked Sendable {  // its Trace is no longer written once returned
    public let text: String
    public let tier: String?
    public let trace: Trace
    public var error: String? = nil
    public var ok: Bool { error == nil }
}

/// Safe to share between tasks: engines load once under a lock (two requests racing for a tier that is
/// not loaded yet wait for one load); each request has its own Trace.
public final class Pipeline: @unchecked Sendable {
    public let spec: RoutingSpec
    let router: Router
    let engineFor: (TierSpec) throws -> TierEngine
    var engines: [String: TierEngine] = [:]
    let enginesLock = NSLock()

    /// `router` reads conversations when truncation.historyTurns > 0 (runtime/router/__init__.py).
    public init(spec: RoutingSpec, router: Router, engineFor: @escaping (TierSpec) throws -> TierEngine) {
        self.spec = spec
        if spec.router.truncation.historyTurns > 0 && !(router is ConversationRouter) {
            self.router = ConversationRouter(inner: router, spec: spec)
        } else {
            self.router = router
        }
        self.engineFor = engineFor
    }

    /// Engines load on first use; one that cannot load fails like any other tier failure.
    func engine(_ tier: String) throws -> TierEngine {
        enginesLock.lock()
        defer { enginesLock.unlock() }
        if let e = engines[tier] { return e }
        guard let spec = spec.tier(tier) else { throw TierError("unknown tier \(tier)") }
        do {
            let e = try engineFor(spec)
            engines[tier] = e
            return e
        } catch let error as TierError { throw error } catch { throw TierError("cannot load: \(error)") }
    }

    /// Milliseconds of a monotonic clock (latencies in traces).
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    func route(_ request: Request, _ trace: Trace) -> String {
        let (system, user) = Prompts.requestRouterInput(request, truncation: spec.router.truncation)
        trace.routerInput = ["system": system, "user": user, "user_chars": Prompts.codePoints(request.user)]
        let decision: RouteDecision
        do { decision = try router.decide(request) } catch {
            decision = RouteDecision(label: nil, confidence: 0, raw: "router failed: \(error)", method: router.method)
        }
        trace.router = decision
        let choice = Policy.chooseTier(decision, spec.policy)
        trace.policyTier = choice.tier
        trace.policyReason = choice.reason
        return choice.tier
    }

    func generate(_ tier: String, _ purpose: String, _ messages: [Message], _ maxTokens: Int, _ trace: Trace,
                  logprobs: Bool = false) async -> Generation? {
        let start = Pipeline.now()
        do {
            let g = try await engine(tier).generate(messages, maxTokens: maxTokens, logprobs: logprobs)
            step(tier, purpose, g, trace)
            return g
        } catch {
            let reason = (error as? TierError)?.reason ?? "\(error)"
            trace.steps.append(Step(tier: tier, purpose: purpose, ok: false, latencyMs: Pipeline.now() - start, error: reason))
            return nil
        }
    }

    func step(_ tier: String, _ purpose: String, _ g: Generation, _ trace: Trace) {
        let t = spec.tier(tier)!
        let cost = (Double(g.inputTokens) * t.priceInPerMTok + Double(g.outputTokens) * t.priceOutPerMTok) / 1e6
        trace.steps.append(Step(tier: tier, purpose: purpose, ok: true, latencyMs: g.latencyMs, inputTokens: g.inputTokens,
                                outputTokens: g.outputTokens, costUsd: cost, model: g.model, simulated: g.simulated))
    }

    /// The answer length a tier is asked for: the request's, unless absent or not positive, then the tier's own
    /// (runtime/pipeline.py `request.max_tokens or tier.max_tokens`; pinned by vectors/pipeline.jsonl).
    public static func answerMaxTokens(_ requested: Int?, tier: TierSpec) -> Int {
        guard let requested, requested > 0 else { return tier.maxTokens }
        return requested
    }

    /// The method's value for an answer (runtime/confidence/methods.py `score_answer`).
    func score(_ tier: String, _ request: Request, _ answer: Generation, _ trace: Trace) async throws -> (String, [String: Any]) {
        let check = spec.confidenceCheck
        let method = check.method == "options" ? check.fallback : check.method
        let prompt = Prompts.ratingPrompt(check.prompt, question: request.user, answer: answer.text)
        switch method {
        case "trained":
            guard let logprobs = answer.tokenLogprobs else { throw TierError("the tier returned no token log-probabilities") }
            return (method, trainedEntry(TrainedHead.answerFeatures(logprobs: logprobs, margins: answer.tokenMargins ?? [],
                                                                   promptTokens: answer.inputTokens)))
        case "token_logprob":
            guard let logprobs = answer.tokenLogprobs else { throw TierError("the tier returned no token log-probabilities") }
            guard let value = TokenConfidence.confidence(check.feature, logprobs: logprobs, margins: answer.tokenMargins ?? []) else {
                throw TierError("unknown token_logprob feature \(check.feature)")
            }
            return (method, ["value": value, "feature": check.feature, "tokens": logprobs.count])
        case "self_rating":
            let distribution = try await engine(tier).withContinuation([Message(role: "user", content: prompt)]) {
                try RatingDistribution.distribution($0)
            }
            return (method, ["value": RatingDistribution.expected(distribution)])
        default:
            let text = await generate(tier, "rating", [Message(role: "user", content: prompt)], check.maxTokens, trace)?.text ?? ""
            let (rating, parsed) = Confidence.ratingOrDefault(text, unparsableRating: check.unparsableRating)
            return (method, ["value": rating, "text": text, "parsed": parsed])
        }
    }

    /// The `trained` head's value on an answer's features, and the features it read.
    func trainedEntry(_ x: [String: Double]) -> [String: Any] {
        guard let head = spec.confidenceCheck.head else { return ["value": -1.0] }  // the spec refuses trained without a head
        return ["value": head.value(x), "features": Dictionary(uniqueKeysWithValues: head.features.map { ($0, x[$0] ?? 0) })]
    }

    /// An answer chosen among a closed label set: what the option walk gives and the trained head reads.
    struct OptionAnswer { let generation: Generation; let probability: Double; let features: [String: Double] }

    /// The option the tier scores best, as the answer, with its probability; nil without a closed set.
    func optionAnswer(_ tier: String, _ request: Request) async throws -> OptionAnswer? {
        guard let options = Options.extract(request.user) else { return nil }
        let start = Pipeline.now()
        let model = spec.tier(tier)?.model ?? tier
        return try await engine(tier).withContinuation(request.messages()) { continuation -> OptionAnswer? in
            let spelled = try options.map { try continuation.tokenize($0) }
            if spelled.contains(where: { $0.isEmpty }) || Set(spelled).count != spelled.count { return nil }
            let prefix = Options.answerPrefix(request.user)
            if !prefix.isEmpty { try continuation.append(try continuation.tokenize(prefix)) }
            let choice = try Options.choose(continuation, options: spelled)
            let text = Options.answerText(request.user, option: options[choice.index])
            let generation = Generation(text: text, inputTokens: continuation.promptTokens,
                                        outputTokens: try continuation.tokenize(text).count,
                                        latencyMs: Pipeline.now() - start, model: model)
            return OptionAnswer(generation: generation, probability: choice.probability,
                                features: TrainedHead.optionFeatures(probability: choice.probability, margin: choice.margin,
                                                                     count: options.count, promptTokens: continuation.promptTokens))
        }
    }

    /// The tier's answer and whether its confidence check says escalate; a failing check escalates.
    func checkedAnswer(_ tier: String, _ request: Request, _ trace: Trace) async -> (Generation?, Bool) {
        let check = spec.confidenceCheck
        let maxTokens = Pipeline.answerMaxTokens(request.maxTokens, tier: spec.tier(tier)!)
        var threshold = check.threshold
        var generation: Generation? = nil
        var entry: [String: Any]? = nil
        var method = check.method
        if check.answersFromOptions() {
            let start = Pipeline.now()
            do {
                if let option = try await optionAnswer(tier, request) {
                    generation = option.generation
                    step(tier, "answer", option.generation, trace)
                    entry = check.method == "options" ? ["value": option.probability] : trainedEntry(option.features)
                } else if check.method == "options" {
                    threshold = check.fallbackThreshold ?? threshold
                }
            } catch {
                let reason = (error as? TierError)?.reason ?? "\(error)"
                trace.steps.append(Step(tier: tier, purpose: "answer", ok: false, latencyMs: Pipeline.now() - start, error: reason))
                return (nil, false)
            }
        }
        if generation == nil {
            generation = await generate(tier, "answer", request.messages(), maxTokens, trace,
                                        logprobs: check.needsTokenLogprobs())
        }
        guard let answer = generation else { return (nil, false) }
        var failure: String? = nil
        if entry == nil {
            do {
                let (name, scored) = try await score(tier, request, answer, trace)
                method = name
                entry = scored
            } catch {
                method = check.method == "options" ? check.fallback : check.method
                failure = (error as? TierError)?.reason ?? "\(error)"
                entry = ["value": method == "sampled_rating" ? check.unparsableRating : -1.0, "parsed": false]
            }
        }
        let scored = entry ?? [:]
        let value = scored["value"] as? Double ?? -1
        let escalate = value < threshold
        var record: [String: Any] = ["tier": tier, "method": method, "value": value, "threshold": threshold, "escalate": escalate]
        if let failure { record["error"] = failure }
        for (key, item) in scored where key != "value" { record[key] = item }
        trace.confidence.append(record)
        return (answer, escalate)
    }

    /// Route (or use `forceTier`, which skips routing and the confidence check: the tier the caller named
    /// answers itself, falling through on failure only), answer, check confidence, escalate or fall through.
    /// Never throws: an unknown `forceTier` or a request no tier could answer returns a Response with `error`.
    public func handle(_ request: Request, forceTier: String? = nil) async -> Response {
        let start = Pipeline.now()
        let trace = Trace(requestId: request.id)
        var tier: String?
        if let forced = forceTier {
            guard spec.tier(forced) != nil else {
                return Response(text: "", tier: nil, trace: trace, error: "unknown tier '\(forced)'")
            }
            trace.policyTier = forced
            trace.policyReason = "tier named by the request"
            tier = forced
        } else {
            tier = route(request, trace)
        }
        var tried = Set<String>()
        var answer: (String, String)? = nil
        while let current = tier, !tried.contains(current) {
            tried.insert(current)
            let maxTokens = Pipeline.answerMaxTokens(request.maxTokens, tier: spec.tier(current)!)
            var escalate = false
            var produced: Generation? = nil
            if forceTier == nil && spec.confidenceCheck.tiers.contains(current) {
                let checked = await checkedAnswer(current, request, trace)
                produced = checked.0
                escalate = checked.1
            } else {
                produced = await generate(current, "answer", request.messages(), maxTokens, trace)
            }
            guard let generation = produced else {
                let next = ([current] + spec.fallbacks(current)).first { !tried.contains($0) }
                trace.fallbacks.append(["from": current, "to": next as Any, "reason": trace.steps.last?.error ?? ""])
                tier = next
                continue
            }
            answer = (current, generation.text)
            if escalate, let next = spec.nextTier(current), !tried.contains(next) {
                let check = trace.confidence.last ?? [:]
                trace.escalations.append(["from": current, "to": next, "method": check["method"] ?? "",
                                          "confidence": check["value"] ?? 0])
                tier = next
                continue
            }
            break
        }
        trace.latencyMs = Pipeline.now() - start
        guard let answer else {
            let reasons = trace.fallbacks.map { "\($0["from"] ?? ""): \($0["reason"] ?? "")" }.joined(separator: "; ")
            return Response(text: "", tier: nil, trace: trace, error: "every tier failed (\(reasons))")
        }
        trace.finalTier = answer.0
        return Response(text: answer.1, tier: answer.0, trace: trace)
    }
}
