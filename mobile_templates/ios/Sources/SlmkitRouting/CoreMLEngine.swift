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

    func logitsArgmax(_ output: MLFeatureProvider) throws -> Int {
        guard let logits = output.featureValue(for: "logits")?.multiArrayValue else { throw TierError("Core ML output has no logits") }
        let vocab = logits.shape.last!.intValue
        let positions = logits.count / vocab
        let base = (positions - 1) * vocab
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<vocab {
            let value = logits[base + i].floatValue
            if value > bestValue { bestValue = value; best = i }
        }
        return best
    }

    public func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
        let start = Pipeline.now()
        let ids = tokenizer.encode(text: try format.render(messages), addSpecialTokens: false)
        let room = cacheLength - ids.count
        if room < 1 { throw TierError("prompt of \(ids.count) tokens does not fit the \(cacheLength)-token cache") }
        let state = model.makeState()
        var generated: [Int] = []
        var feed = ids
        let eos = tokenizer.eosTokenId
        do {
            for _ in 0..<min(maxTokens, room) {
                let total = ids.count + generated.count
                let inputIds = try MLMultiArray(shape: [1, NSNumber(value: feed.count)], dataType: .int32)
                for (i, id) in feed.enumerated() { inputIds[i] = NSNumber(value: id) }
                let mask = try MLMultiArray(shape: [1, NSNumber(value: total)], dataType: .int32)
                for i in 0..<total { mask[i] = 1 }
                let input = try MLDictionaryFeatureProvider(dictionary: ["input_ids": inputIds, "attention_mask": mask])
                let token = try logitsArgmax(try await model.prediction(from: input, using: state))
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
        return Generation(text: text.trimmingCharacters(in: .whitespacesAndNewlines), inputTokens: ids.count,
                          outputTokens: generated.count, latencyMs: Pipeline.now() - start, model: name)
    }
}
#endif
