import Foundation

/// The routing pipeline (runtime/pipeline.py): router -> tier policy -> tier engine -> self-rating
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
}

/// A tier that failed (timeout, HTTP error, model missing): the pipeline falls through to the next.
public struct TierError: Error { public let reason: String; public init(_ reason: String) { self.reason = reason } }

public protocol TierEngine: AnyObject {
    func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation
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
}

public final class Trace {
    public let requestId: String
    public var routerInput: [String: Any] = [:]
    public var router: RouteDecision?
    public var policyTier: String?
    public var policyReason = ""
    public var steps: [Step] = []
    public var ratings: [[String: Any]] = []
    public var escalations: [[String: Any]] = []
    public var fallbacks: [[String: Any]] = []
    public var finalTier: String?
    public var latencyMs = 0.0
    public var costUsd: Double { steps.reduce(0) { $0 + $1.costUsd } }
    init(requestId: String) { self.requestId = requestId }
}

public struct Response {
    public let text: String
    public let tier: String?
    public let trace: Trace
    public var error: String? = nil
    public var ok: Bool { error == nil }
}

public final class Pipeline {
    public let spec: RoutingSpec
    let router: Router
    let engineFor: (TierSpec) throws -> TierEngine
    var engines: [String: TierEngine] = [:]

    public init(spec: RoutingSpec, router: Router, engineFor: @escaping (TierSpec) throws -> TierEngine) {
        self.spec = spec; self.router = router; self.engineFor = engineFor
    }

    /// Engines load on first use; one that cannot load fails like any other tier failure.
    func engine(_ tier: String) throws -> TierEngine {
        if let e = engines[tier] { return e }
        guard let spec = spec.tier(tier) else { throw TierError("unknown tier \(tier)") }
        do {
            let e = try engineFor(spec)
            engines[tier] = e
            return e
        } catch let error as TierError { throw error } catch { throw TierError("cannot load: \(error)") }
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    func route(_ request: Request, _ trace: Trace) -> String {
        let (system, user) = Prompts.routerInput(system: request.system, user: request.user, truncation: spec.router.truncation)
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

    func generate(_ tier: String, _ purpose: String, _ messages: [Message], _ maxTokens: Int, _ trace: Trace) async -> Generation? {
        let start = Pipeline.now()
        do {
            let g = try await engine(tier).generate(messages, maxTokens: maxTokens)
            let t = spec.tier(tier)!
            let cost = (Double(g.inputTokens) * t.priceInPerMTok + Double(g.outputTokens) * t.priceOutPerMTok) / 1e6
            trace.steps.append(Step(tier: tier, purpose: purpose, ok: true, latencyMs: g.latencyMs, inputTokens: g.inputTokens,
                                    outputTokens: g.outputTokens, costUsd: cost, model: g.model, simulated: g.simulated))
            return g
        } catch {
            let reason = (error as? TierError)?.reason ?? "\(error)"
            trace.steps.append(Step(tier: tier, purpose: purpose, ok: false, latencyMs: Pipeline.now() - start, error: reason))
            return nil
        }
    }

    /// Ask the tier to rate its own answer; true means escalate.
    func rate(_ tier: String, _ request: Request, _ answer: String, _ trace: Trace) async -> Bool {
        let check = spec.confidenceCheck
        let prompt = Prompts.ratingPrompt(check.prompt, question: request.user, answer: answer)
        let text = await generate(tier, "rating", [Message(role: "user", content: prompt)], check.maxTokens, trace)?.text ?? ""
        let (rating, parsed) = Confidence.ratingOrDefault(text, unparsableRating: check.unparsableRating)
        let escalate = Confidence.shouldEscalate(rating, threshold: check.threshold)
        trace.ratings.append(["tier": tier, "text": text, "rating": rating, "parsed": parsed, "escalate": escalate])
        return escalate
    }

    public func handle(_ request: Request, forceTier: String? = nil) async -> Response {
        let start = Pipeline.now()
        let trace = Trace(requestId: request.id)
        var tier: String?
        if let forced = forceTier {
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
            let maxTokens = request.maxTokens ?? spec.tier(current)?.maxTokens ?? 512
            guard let generation = await generate(current, "answer", request.messages(), maxTokens, trace) else {
                let next = ([current] + spec.fallbacks(current)).first { !tried.contains($0) }
                trace.fallbacks.append(["from": current, "to": next as Any, "reason": trace.steps.last?.error ?? ""])
                tier = next
                continue
            }
            answer = (current, generation.text)
            if spec.confidenceCheck.tiers.contains(current), await rate(current, request, generation.text, trace),
               let next = spec.nextTier(current), !tried.contains(next) {
                trace.escalations.append(["from": current, "to": next, "rating": trace.ratings.last?["rating"] ?? 0])
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
