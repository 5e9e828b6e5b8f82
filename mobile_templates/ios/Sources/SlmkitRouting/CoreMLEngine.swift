#if canImport(CoreML)
import CoreML
import Foundation
import Tokenizers

/// The on-device tier on iOS 18+: the bundle's stateful int4 Core ML program (KV cache in
/// `MLState`), one prefill call for the prompt then one call per token, greedy — the same loop the
/// simulator's parity check runs. Tokenizer: swift-transformers (>= 1.1.4), from the bundle's tokenizer folder.
///
/// The `.mlpackage` is compiled once and the `.mlmodelc` kept in the caches directory, keyed by the
/// package's file sizes and dates (`CompiledModelCache`); logits are read from the output buffer
/// (float16 or float32) without boxing; stop strings are checked on the last tokens decoded only.
@available(iOS 18.0, macOS 15.0, *)
public final class CoreMLEngine: TierEngine {
    let model: MLModel
    let tokenizer: Tokenizer
    let format: ChatFormat
    let cacheLength: Int
    let name: String
    /// Tokens decoded to look for a stop string: enough for the longest stop even at 4 byte-tokens per character.
    let stopWindow: Int
    /// Prompt tokens per prefill call (runtime/engines/coreml.py PREFILL_CHUNK): the program returns logits for
    /// every position it is fed, so a 4,000-token prompt in one call would allocate ~400 MB of fp16 logits.
    static let prefillChunk = 128

    /// `cacheLength`: the KV-cache length the program was converted with; `contextTokens` (the tier's
    /// context_tokens) caps prompt + answer further when smaller, as the Python runtime does.
    public init(modelURL: URL, tokenizerFolder: URL, format: ChatFormat, cacheLength: Int, contextTokens: Int? = nil,
                computeUnits: MLComputeUnits = .cpuAndNeuralEngine) async throws {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let compiled = modelURL.pathExtension == "mlmodelc" ? modelURL : try await CompiledModelCache.compiled(modelURL)
        model = try MLModel(contentsOf: compiled, configuration: configuration)
        tokenizer = try await AutoTokenizer.from(modelFolder: tokenizerFolder)
        self.format = format
        self.cacheLength = min(cacheLength, contextTokens ?? cacheLength)
        name = modelURL.lastPathComponent
        stopWindow = 4 * (format.stops.map { $0.unicodeScalars.count }.max() ?? 0) + 4
    }

    /// The on-device `tier` of a bundle at `root` (the folder holding routing.json): its model folder's
    /// model.mlpackage and tokenizer/, the bundle's chat_format.json, and the KV-cache length the
    /// conversion recorded in the model folder's manifest.json (`conversion.cache_length`).
    public convenience init(bundle root: URL, tier: TierSpec, computeUnits: MLComputeUnits = .cpuAndNeuralEngine) async throws {
        guard let model = tier.model, tier.backend == "coreml" else { throw TierError("tier \(tier.name) is not a Core ML tier") }
        let folder = root.appendingPathComponent(model, isDirectory: true)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        guard let conversion = (manifest as? [String: Any])?["conversion"] as? [String: Any],
              let cacheLength = (conversion["cache_length"] as? NSNumber)?.intValue else {
            throw TierError("\(folder.path)/manifest.json records no conversion.cache_length")
        }
        try await self.init(modelURL: folder.appendingPathComponent("model.mlpackage"),
                            tokenizerFolder: folder.appendingPathComponent("tokenizer", isDirectory: true),
                            format: try ChatFormat(data: Data(contentsOf: root.appendingPathComponent("chat_format.json"))),
                            cacheLength: cacheLength, contextTokens: tier.contextTokens, computeUnits: computeUnits)
    }

    /// The logits output of one call.
    func logitsArray(_ output: MLFeatureProvider) throws -> MLMultiArray {
        guard let logits = output.featureValue(for: "logits")?.multiArrayValue, logits.shape.count == 3 else {
            throw TierError("Core ML output has no logits [1, n, vocab]")
        }
        return logits
    }

    /// Index of the largest logit of the last position, read in place (no per-element NSNumber).
    static func lastArgmax(_ logits: MLMultiArray) throws -> Int {
        try lastRow(logits) { count, value in
            var best = 0
            var top = value(0)
            for i in 1..<count { let v = value(i); if v > top { top = v; best = i } }
            return best
        }
    }

    /// The last position's logits as Double (for log-probabilities and the confidence methods).
    static func lastLogits(_ logits: MLMultiArray) throws -> [Double] {
        try lastRow(logits) { count, value in (0..<count).map { Double(value($0)) } }
    }

    /// Calls `body` with the vocabulary size and a reader of the last position's logit i, honouring
    /// the array's strides and element type (Float16 read as bits: Intel Macs have no Float16).
    static func lastRow<T>(_ logits: MLMultiArray, _ body: (Int, (Int) -> Float) -> T) throws -> T {
        let vocab = logits.shape[2].intValue
        let base = (logits.shape[1].intValue - 1) * logits.strides[1].intValue
        let step = logits.strides[2].intValue
        switch logits.dataType {
        case .float16:
            return logits.withUnsafeBytes { raw in
                let bits = raw.bindMemory(to: UInt16.self)
                return body(vocab) { LinearHead.halfToFloat(bits[base + $0 * step]) }
            }
        case .float32:
            return logits.withUnsafeBytes { raw in
                let values = raw.bindMemory(to: Float.self)
                return body(vocab) { values[base + $0 * step] }
            }
        case .double:
            return logits.withUnsafeBytes { raw in
                let values = raw.bindMemory(to: Double.self)
                return body(vocab) { Float(values[base + $0 * step]) }
            }
        default:
            throw TierError("Core ML logits of an unexpected type (\(logits.dataType.rawValue))")
        }
    }

    /// The prompt through the cache `prefillChunk` tokens per call; the logits of the last call.
    func prefill(_ ids: [Int], state: MLState) throws -> MLMultiArray {
        var logits: MLMultiArray? = nil
        for start in stride(from: 0, to: ids.count, by: CoreMLEngine.prefillChunk) {
            let end = min(start + CoreMLEngine.prefillChunk, ids.count)
            logits = try step(Array(ids[start..<end]), total: end, state: state)
        }
        guard let logits else { throw TierError("an empty prompt cannot be prefilled") }
        return logits
    }

    /// One call of the stateful program: `feed` new tokens, `total` tokens in the cache with them.
    func step(_ feed: [Int], total: Int, state: MLState) throws -> MLMultiArray {
        let inputIds = try MLMultiArray(shape: [1, NSNumber(value: feed.count)], dataType: .int32)
        inputIds.withUnsafeMutableBufferPointer(ofType: Int32.self) { buffer, _ in
            for (i, id) in feed.enumerated() { buffer[i] = Int32(id) }
        }
        let mask = try MLMultiArray(shape: [1, NSNumber(value: total)], dataType: .int32)
        mask.withUnsafeMutableBufferPointer(ofType: Int32.self) { buffer, _ in
            for i in 0..<total { buffer[i] = 1 }
        }
        let input = try MLDictionaryFeatureProvider(dictionary: ["input_ids": inputIds, "attention_mask": mask])
        return try logitsArray(try model.prediction(from: input, using: state))
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
        let eos = tokenizer.eosTokenId
        do {
            for _ in 0..<max(0, min(maxTokens, room)) {
                try Task.checkCancellation()
                let logits = generated.isEmpty ? try prefill(ids, state: state)
                    : try step([generated.last!], total: ids.count + generated.count, state: state)
                let token: Int
                if logprobs {
                    let row = try CoreMLEngine.lastLogits(logits)
                    token = CoreMLEngine.argmax(row)
                    stats.append(TokenConfidence.tokenStats(row, token: token))
                } else {
                    token = try CoreMLEngine.lastArgmax(logits)
                }
                if token == eos { break }
                generated.append(token)
                if !format.stops.isEmpty {
                    let tail = tokenizer.decode(tokens: Array(generated.suffix(stopWindow)))
                    if format.stops.contains(where: { tail.hasSuffix($0) }) { break }
                }
            }
        } catch let error as TierError { throw error } catch is CancellationError { throw TierError("cancelled") } catch {
            throw TierError("Core ML prediction failed: \(error)")
        }
        var text = tokenizer.decode(tokens: generated)
        for stop in format.stops where text.hasSuffix(stop) { text.removeLast(stop.count) }
        return Generation(text: text, inputTokens: ids.count,
                          outputTokens: generated.count, latencyMs: Pipeline.now() - start, model: name,
                          tokenLogprobs: logprobs ? stats.map { $0.0 } : nil, tokenMargins: logprobs ? stats.map { $0.1 } : nil)
    }

    static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
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
        last = try CoreMLEngine.lastLogits(try engine.prefill(ids, state: state))
    }

    func logprobs() throws -> [Double] { TokenConfidence.logSoftmax(last) }

    func append(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { return }
        if total + tokens.count > engine.cacheLength {
            throw TierError("\(total + tokens.count) tokens do not fit the \(engine.cacheLength)-token cache")
        }
        total += tokens.count
        last = try CoreMLEngine.lastLogits(try engine.step(tokens, total: total, state: state))
    }

    func tokenize(_ text: String) throws -> [Int] { engine.tokenizer.encode(text: text, addSpecialTokens: false) }
}

/// Compiled programs kept across launches: `MLModel.compileModel(at:)` once per package version, the
/// `.mlmodelc` moved into Caches/slmkit/compiled under a key of the package's file names, sizes and
/// modification dates (a replaced model compiles again; the OS may purge Caches, then it compiles again).
@available(iOS 18.0, macOS 15.0, *)
public enum CompiledModelCache {
    public static func compiled(_ package: URL) async throws -> URL {
        let folder = try FileManager.default.url(for: .cachesDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("slmkit/compiled", isDirectory: true)
        let target = folder.appendingPathComponent("\(package.deletingPathExtension().lastPathComponent)-\(try key(package)).mlmodelc")
        if FileManager.default.fileExists(atPath: target.path) { return target }
        let fresh = try await MLModel.compileModel(at: package)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        do {
            try FileManager.default.moveItem(at: fresh, to: target)
        } catch {
            guard FileManager.default.fileExists(atPath: target.path) else { throw error }
            try? FileManager.default.removeItem(at: fresh)   // another engine compiled it first
        }
        return target
    }

    /// The first 16 hex digits of SHA-256 over "relative path, size, modification time" of every file.
    static func key(_ package: URL) throws -> String {
        let keys: [URLResourceKey] = [.fileSizeKey, .contentModificationDateKey, .isRegularFileKey]
        guard let walk = FileManager.default.enumerator(at: package, includingPropertiesForKeys: keys) else {
            throw TierError("cannot read \(package.path)")
        }
        var lines: [String] = []
        for case let file as URL in walk {
            let values = try file.resourceValues(forKeys: Set(keys))
            guard values.isRegularFile == true else { continue }
            let relative = String(file.path.dropFirst(package.path.count))
            lines.append("\(relative)\t\(values.fileSize ?? -1)\t\(values.contentModificationDate?.timeIntervalSince1970 ?? 0)")
        }
        return String(Digest.sha256Hex(Data(lines.sorted().joined(separator: "\n").utf8)).prefix(16))
    }
}
#endif
