// Signatures from swift-transformers 1.1.4 .. 1.3.3 (Sources/Tokenizers/Tokenizer.swift).
import Foundation
public protocol Tokenizer {
    func encode(text: String, addSpecialTokens: Bool) -> [Int]
    func decode(tokens: [Int]) -> String
    var eosTokenId: Int? { get }
}
public struct AutoTokenizer {
    public static func from(modelFolder: URL, strict: Bool = true) async throws -> Tokenizer { fatalError() }
}
