import Foundation
import XCTest
@testable import SlmkitRoutingCore

/// The bundle's golden vectors through the Swift port: the same files the Python runtime passes.
final class GoldenVectorsTests: XCTestCase {
    func testEveryVectorPasses() async throws {
        let folder = Bundle.module.resourceURL!.appendingPathComponent("vectors")
        let outcomes = try await GoldenVectors.run(folder: folder)
        XCTAssertFalse(outcomes.isEmpty)
        let failures = outcomes.filter { $0.detail != nil }.map { "\($0.file) \($0.name): \($0.detail!)" }
        XCTAssertEqual(failures, [])
    }

    func testTheBundledSpecFallsThroughAFailingTier() async throws {
        let url = Bundle.module.resourceURL!.appendingPathComponent("routing.json")
        let spec = try RoutingSpec(data: Data(contentsOf: url))
        struct Fixed: Router {
            let method = "fixed"
            func decide(_ request: Request) throws -> RouteDecision { RouteDecision(label: "complex", confidence: 0.99) }
        }
        final class Engine: TierEngine {
            let fails: Bool
            init(fails: Bool) { self.fails = fails }
            func generate(_ messages: [Message], maxTokens: Int) async throws -> Generation {
                if fails { throw TierError("HTTP 503") }
                return Generation(text: "fallback answer", inputTokens: 10, outputTokens: 5, latencyMs: 1, model: "test")
            }
        }
        let complexTier = spec.policy.routes.first { $0.label == "complex" }!.tier
        let pipeline = Pipeline(spec: spec, router: Fixed()) { tier in Engine(fails: tier.name == complexTier) }
        let response = await pipeline.handle(Request(user: "Prove Fermat's little theorem."))
        XCTAssertTrue(response.ok)
        XCTAssertEqual(response.text, "fallback answer")
        XCTAssertEqual(response.trace.fallbacks.count, 1)
    }
}
