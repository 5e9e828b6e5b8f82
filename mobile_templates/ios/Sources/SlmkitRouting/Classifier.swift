import CryptoKit
import Foundation

/// The `classifier` router with a `hashed-v1` head (runtime/router/head.py): hashed n-grams and
/// length numbers through a linear layer stored as JSON + raw little-endian float16.
public struct LinearHead {
    public let labels: [String]
    public let buckets: Int
    public let dense: [String]
    let weights: [Float]
    let outputs: Int
    public let bias: [Double]
    /// A task-category head: category -> the routing label it counts toward (nil: labels are tiers).
    public let labelGroups: [String: String]?

    public init(header: Data, blob: Data) throws {
        guard let h = try JSONSerialization.jsonObject(with: header) as? [String: Any],
              h["format"] as? String == "slmkit-router-head" else { throw SpecError.shape("not a router head") }
        guard h["features"] as? String == "hashed-v1" else {
            throw SpecError.shape("head features \(h["features"] ?? "?"): this port computes hashed-v1 only")
        }
        let digest = SHA256.hash(data: blob).map { String(format: "%02x", $0) }.joined()
        guard digest == h["weights_sha256"] as? String else { throw SpecError.shape("router weights do not match their sha256") }
        guard let shape = h["shape"] as? [Int], shape.count == 2, blob.count == shape[0] * shape[1] * 2 else {
            throw SpecError.shape("router weights have the wrong size")
        }
        weights = blob.withUnsafeBytes { raw in
            (0..<(shape[0] * shape[1])).map { LinearHead.halfToFloat(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        }
        outputs = shape[1]
        labels = h["labels"] as? [String] ?? []
        buckets = h["buckets"] as? Int ?? 0
        dense = h["dense"] as? [String] ?? []
        bias = (h["bias"] as? [NSNumber] ?? []).map(\.doubleValue)
        labelGroups = h["label_groups"] as? [String: String]
    }

    /// IEEE 754 binary16 -> binary32 by hand: `Float16` does not exist on Intel Macs.
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign: Float = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = Float(bits & 0x3FF)
        switch exponent {
        case 0: return sign * mantissa * powf(2, -24)
        case 0x1F: return mantissa == 0 ? sign * .infinity : .nan
        default: return sign * (1 + mantissa / 1024) * powf(2, Float(exponent - 15))
        }
    }

    public func logits(sparse: [Int: Double], dense values: [Double]) -> [Double] {
        var out = bias
        for (index, value) in sparse { for j in 0..<outputs { out[j] += value * Double(weights[index * outputs + j]) } }
        for (k, value) in values.enumerated() { for j in 0..<outputs { out[j] += value * Double(weights[(buckets + k) * outputs + j]) } }
        return out
    }
}

public struct ClassifierRouter: Router {
    public let method = "classifier"
    let spec: RouterSpec
    let head: LinearHead

    public init(spec: RouterSpec, head: LinearHead) throws {
        guard head.dense == ["log_user_chars", "log_user_lines", "log_system_chars", "digit_share"] else {
            throw SpecError.shape("head dense features \(head.dense) differ from this port's")
        }
        let routed = head.labelGroups.map { Set($0.values).sorted() } ?? head.labels.sorted()
        if let groups = head.labelGroups, groups.keys.sorted() != head.labels.sorted() {
            throw SpecError.shape("head label_groups do not cover its labels \(head.labels)")
        }
        guard routed == spec.labels.sorted() else { throw SpecError.shape("head labels \(routed) != spec labels \(spec.labels)") }
        self.spec = spec
        self.head = head
    }

    public func decide(_ request: Request) throws -> RouteDecision {
        let start = DispatchTime.now().uptimeNanoseconds
        let (system, user) = Prompts.requestRouterInput(request, truncation: spec.truncation)
        let text = Features.classifierText(system: system, user: user)
        let logits = head.logits(sparse: Features.hashed(text, buckets: head.buckets),
                                 dense: Features.dense(system: request.system,
                                                       user: Prompts.conversationUser(request, truncation: spec.truncation)))
        var decision = head.labelGroups.map {
            Decisions.fromGroupedLogits(spec.labels, classes: head.labels, logits, groups: $0, temperature: spec.temperature, method: method)
        } ?? Decisions.fromLogits(head.labels, logits, temperature: spec.temperature, method: method)
        decision.latencyMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return decision
    }
}
