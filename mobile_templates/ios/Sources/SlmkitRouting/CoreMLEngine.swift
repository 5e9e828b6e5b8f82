#if canImport(CoreML)
import CoreML
import Foundation
import Tokenizers

/// The on-device tier on iOS 18+: the bundle's stateful int4 Core ML program (KV cache in
/// `MLState`), one prefill call for the prompt then one call per token, greedy — the same loop the
/// simulator's parity check runs. Tokenizer: swift-transformers, from the bundle's tokenizer folder.
@available(iOS 18.0, macOS 15.0, *)
public final class CoreMLEngine: TierEngine {
    let model: MLModel
    let tokenizer: Tokenizer
    let format: ChatFormat
    let cacheLength: Int
    let name: String

    public init(modelURL: URL, tokenizerFolder: URL, format: ChatFormat, cacheLength: Int) async throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = .cpuAndNeuralEngine
        let compiled = modelURL.pathExtension == "mlmodelc" ? modelURL : try await MLModel.compileModel(at: modelURL)
        model = try MLModel(contentsOf: compiled, configuration: configuration)
        tokenizer = try await AutoTokenizer.from(modelFolder: tokenizerFolder)
        self.format = format
        self.cacheLength = cacheLength
        name = modelURL.lastPathComponent
    }

    /// The logits [vocab] of the last position, as Double.
    func lastLogits(_ output: MLFeatureProvider) throws -> [Double] {
        guard let logits = output.featureValue(for: "logits")?.multiArrayValue else { throw TierError("Core ML output has no logits") }
        let vocab = logits.shape.last!.intValue
        let base = (logits.count / vocab - 1) * vocab
        return (0..<vocab).map { logits[base + $0].doubleValue }
    }

    static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    /// One call of the stateful program: `feed` new tokens, `total` tokens in the cache with them.
    func step(_ feed: [Int], total: Int, state: MLState) throws -> [Double] {
        let inputIds = try MLMultiArray(shape: [1, NSNumber(value: feed.count)], dataType: .int32)
        for (i, id) in feed.enumerated() { inputIds[i] = NSNumber(value: id) }
        let mask = try MLMultiArray(shape: [1, NSNumber(value: total)], dataType: .int32)
        for i in 0..<total { mask[i] = 1 }
        let input = try MLDictionaryFeatureProvider(dictionary: ["input_ids": inputIds, "attention_mask": mask])
        return try lastLogits(try model.prediction(from: input, using: state))
    }

    public func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
        try await generate(messages, maxTokens: maxTokens, logprobs: false)
    }

    /// With `logprobs`, each token's log-probability and margin from the logits it was chosen from.
    public func generate(_ messages: [Message], maxTokens: Int, logprobs: Bool) async throws -> Generation {
        let start = Pipeline.now()
        let ids = tokenizer.encode(text: try format.render(messages), addSpecialTokens: false)
        let room = cacheLength - ids.count
        if room < 1 { throw TierError("prompt of \(ids.count) tokens does not fit the \(cacheLength)-token cache") }
        let state = model.makeState()
        var generated: [Int] = []
        var stats: [(Double, Double)] = []
        var feed = ids
        let eos = tokenizer.eosTokenId
        do {
            for _ in 0..<min(maxTokens, room) {
                let logits = try step(feed, total: ids.count + generated.count, state: state)
                let token = CoreMLEngine.argmax(logits)
                if logprobs { stats.append(TokenConfidence.tokenStats(logits, token: token)) }
                if token == eos { break }
                generated.append(token)
                feed = [token]
                let text = tokenizer.decode(tokens: generated)
                if format.stops.contains(where: { text.hasSuffix($0) }) { break }
            }
        } catch let error as TierError { throw error } catch {
            throw TierError("Core ML prediction failed: \(error)")
        }
        var text = tokenizer.decode(tokens: generated)
        for stop in format.stops where text.hasSuffix(stop) { text.removeLast(stop.count) }
        var generation = Generation(text: text.trimmingCharacters(in: .whitespacesAndNewlines), inputTokens: ids.count,
                                    outputTokens: generated.count, latencyMs: Pipeline.now() - start, model: name)
        if logprobs {
            generation.tokenLogprobs = stats.map { $0.0 }
            generation.tokenMargins = stats.map { $0.1 }
        }
        return generation
    }

    /// The chat prompt prefilled into fresh states, extended and scored token by token.
    public func withContinuation<T>(_ messages: [Message], _ body: (Continuation) throws -> T) async throws -> T {
        let ids = tokenizer.encode(text: try format.render(messages), addSpecialTokens: false)
        if ids.count >= cacheLength { throw TierError("prompt of \(ids.count) tokens does not fit the \(cacheLength)-token cache") }
        do {
            return try body(try StateContinuation(engine: self, ids: ids))
        } catch let error as TierError { throw error } catch {
            throw TierError("Core ML prediction failed: \(error)")
        }
    }
}

/// ConfidenceMethods.swift's Continuation over the program's KV-cache states.
@available(iOS 18.0, macOS 15.0, *)
final class StateContinuation: Continuation {
    let engine: CoreMLEngine
    let state: MLState
    let promptTokens: Int
    var total: Int
    var last: [Double]

    init(engine: CoreMLEngine, ids: [Int]) throws {
        self.engine = engine
        state = engine.model.makeState()
        promptTokens = ids.count
        total = ids.count
        last = try engine.step(ids, total: total, state: state)
    }

    func logprobs() throws -> [Double] { TokenConfidence.logSoftmax(last) }

    func append(_ tokens: [Int]) throws {
        total += tokens.count
        last = try engine.step(tokens, total: total, state: state)
    }

    func tokenize(_ text: String) throws -> [Int] { engine.tokenizer.encode(text: text, addSpecialTokens: false) }
}
#endif
