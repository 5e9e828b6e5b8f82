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

    /// The header (JSON, read as Python's json.loads reads it) and the float16 weights it describes,
    /// checked as runtime/router/head.py `HeadHeader` and `load_head` check them: format and version,
    /// at least two unique labels, integer buckets and shape, one weight column and one finite bias per
    /// label, sha256 and size of the weights. This port computes hashed-v1 only, so its rows must be
    /// exactly buckets + dense (no sentence-encoder rows). Throws SpecError naming the first problem.
    /// HeadHeader's fields (runtime/router/head.py); any other is refused, as there (extra="forbid").
    static let fields: Set<String> = ["format", "version", "features", "labels", "buckets", "dense", "shape", "bias",
                                      "weights_file", "weights_sha256", "info", "label_groups"]

    public init(header: Data, blob: Data) throws {
        func bad(_ why: String) -> SpecError { SpecError.shape("router head: \(why)") }
        guard let pairs = (try? PyJSON.loads(String(decoding: header, as: UTF8.self)))?.pairs else { throw bad("not a JSON object") }
        let h = Dictionary(PyJSON.dict(pairs).map { ($0.0, $0.1) }, uniquingKeysWith: { _, last in last })
        guard h["format"]?.string == "slmkit-router-head", h["version"]?.int == 1 else {
            throw bad("not a router head (format slmkit-router-head, version 1)")
        }
        if let extra = h.keys.first(where: { !LinearHead.fields.contains($0) }) { throw bad("unknown field \(extra)") }
        guard let file = h["weights_file"]?.string, PyText.isRelativeInside(file) else {
            throw bad("weights_file must be a relative path inside the head's folder")
        }
        if let info = h["info"], info.pairs == nil { throw bad("info must be an object") }
        guard h["features"]?.string == "hashed-v1" else {
            throw bad("features \(h["features"]?.string ?? "?"): this port computes hashed-v1 only")
        }
        func strings(_ key: String) -> [String]? {
            guard case .array(let items)? = h[key] else { return nil }
            let found = items.compactMap(\.string)
            return found.count == items.count ? found : nil
        }
        // Unique also as Swift compares text (canonical equivalence): "café" twice in two spellings is refused.
        guard let labels = strings("labels"), labels.count >= 2, Set(labels).count == labels.count else {
            throw bad("labels must be at least two unique strings (also after Unicode normalization)")
        }
        guard let buckets = h["buckets"]?.int, buckets >= 1 else { throw bad("buckets must be an integer >= 1 (hashed features)") }
        guard let dense = strings("dense") else { throw bad("dense must be a list of feature names") }
        guard case .array(let shapeItems)? = h["shape"], shapeItems.count == 2,
              let rows = shapeItems[0].int, let columns = shapeItems[1].int, rows >= 0, columns >= 0 else {
            throw bad("shape must be two integers")
        }
        guard rows == buckets + dense.count, case (let cells, false) = rows.multipliedReportingOverflow(by: columns),
              case (let bytes, false) = cells.multipliedReportingOverflow(by: 2) else {
            throw bad("shape [\(rows), \(columns)] needs \(buckets) buckets + \(dense.count) dense rows")
        }
        guard case .array(let biasItems)? = h["bias"] else { throw bad("bias must be a list of numbers") }
        let bias = biasItems.compactMap(\.number)
        guard bias.count == biasItems.count, bias.allSatisfy(\.isFinite) else { throw bad("biases must be finite numbers") }
        guard columns == labels.count, bias.count == labels.count else {
            throw bad("shape [\(rows), \(columns)] and \(bias.count) biases need one column per label (\(labels.count))")
        }
        var groups: [String: String]? = nil
        if let value = h["label_groups"], case .object(let groupPairs) = value {
            let named = PyJSON.dict(groupPairs).compactMap { key, value in value.string.map { (key, $0) } }
            guard named.count == PyJSON.dict(groupPairs).count else { throw bad("label_groups must map names to labels") }
            groups = Dictionary(named, uniquingKeysWith: { _, last in last })
        } else if let value = h["label_groups"], case .null = value {
            groups = nil
        } else if h["label_groups"] != nil {
            throw bad("label_groups must be an object")
        }
        guard Digest.sha256Hex(blob) == h["weights_sha256"]?.string else { throw bad("weights do not match their sha256") }
        guard blob.count == bytes else {
            throw bad("weights hold \(blob.count) bytes; shape [\(rows), \(columns)] needs \(bytes)")
        }
        weights = blob.withUnsafeBytes { raw in
            (0..<(rows * columns)).map { LinearHead.halfToFloat(raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        }
        outputs = columns
        self.labels = labels
        self.buckets = buckets
        self.dense = dense
        self.bias = bias
        labelGroups = groups
    }

    /// IEEE 754 binary16 -> binary32 by hand: `Float16` does not exist on Intel Macs.
    public static func halfToFloat(_ bits: UInt16) -> Float {
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
