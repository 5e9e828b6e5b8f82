#if canImport(CoreML)
import CoreML
import Foundation
import XCTest
@testable import SlmkitRouting

/// The bundle's Core ML program on Apple's runtime (macOS CI): a decode step after a prefill gives the
/// logits a prefill of the whole sequence gives (the two input lengths are independent), the compiled
/// model is reused, and generation ends within its token budget.
@available(macOS 15.0, iOS 18.0, *)
final class CoreMLEngineTests: XCTestCase {
    /// The bundle folder: this file is app/ios/Tests/SlmkitRoutingTests/ inside it.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func engine() async throws -> CoreMLEngine {
        let specURL = Self.root.appendingPathComponent("routing.json")
        guard FileManager.default.fileExists(atPath: specURL.path) else { throw XCTSkip("not inside a rendered bundle") }
        let spec = try RoutingSpec(data: Data(contentsOf: specURL))
        guard let tier = spec.tiers.first(where: { $0.backend == "coreml" }) else { throw XCTSkip("the bundle has no Core ML tier") }
        return try await CoreMLEngine(bundle: Self.root, tier: tier, computeUnits: .cpuOnly)
    }

    func testADecodeStepGivesThePrefillsLogits() async throws {
        let engine = try await engine()
        let ids = engine.tokenizer.encode(text: "The capital of France is Paris, and the capital of Italy is", addSpecialTokens: false)
        XCTAssertGreaterThan(ids.count, 4)
        let stepped = try StateContinuation(engine: engine, ids: Array(ids.dropLast()))
        try stepped.append([ids.last!])
        let whole = try StateContinuation(engine: engine, ids: ids)
        let scale = whole.last.map(abs).max()!
        let worst = zip(stepped.last, whole.last).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 0.02 * max(1, scale), "decode step (past > 0) differs from the prefill")
        XCTAssertEqual(CoreMLEngine.argmax(stepped.last), CoreMLEngine.argmax(whole.last))
    }

    func testTheCompiledModelIsReusedAndGenerationStaysInBudget() async throws {
        _ = try await engine()
        let specURL = Self.root.appendingPathComponent("routing.json")
        let spec = try RoutingSpec(data: Data(contentsOf: specURL))
        let tier = spec.tiers.first(where: { $0.backend == "coreml" })!
        let package = Self.root.appendingPathComponent(tier.model!).appendingPathComponent("model.mlpackage")
        let first = try await CompiledModelCache.compiled(package)
        let before = try FileManager.default.attributesOfItem(atPath: first.path)[.creationDate] as? Date
        let second = try await CompiledModelCache.compiled(package)
        XCTAssertEqual(first, second)
        XCTAssertEqual(before, try FileManager.default.attributesOfItem(atPath: second.path)[.creationDate] as? Date)
        let generation = try await engine().generate([Message(role: "user", content: "Say hello.")], maxTokens: 4)
        XCTAssertGreaterThan(generation.inputTokens, 0)
        XCTAssertLessThanOrEqual(generation.outputTokens, 4)
    }
}
#endif
