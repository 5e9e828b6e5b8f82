// Signatures as Apple documents them (Core ML, iOS 18 / macOS 15 SDK); bodies are unreachable.
import Foundation
public enum MLComputeUnits: Int { case cpuOnly = 0, cpuAndGPU = 1, all = 2, cpuAndNeuralEngine = 3 }
public class MLModelConfiguration { public init() {}; public var computeUnits: MLComputeUnits = .all }
public enum MLMultiArrayDataType: Int { case double = 65600, float32 = 65568, float16 = 65552, int32 = 131104 }
public protocol MLShapedArrayScalar {}
extension Int32: MLShapedArrayScalar {}
extension Float: MLShapedArrayScalar {}
public class MLMultiArray {
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws { fatalError() }
    public var shape: [NSNumber] { fatalError() }
    public var strides: [NSNumber] { fatalError() }
    public var dataType: MLMultiArrayDataType { fatalError() }
    public var count: Int { fatalError() }
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { fatalError() }
    public func withUnsafeMutableBufferPointer<S: MLShapedArrayScalar, R>(ofType type: S.Type,
        _ body: (inout UnsafeMutableBufferPointer<S>, [Int]) throws -> R) rethrows -> R { fatalError() }
}
public class MLFeatureValue { public var multiArrayValue: MLMultiArray? { fatalError() } }
public protocol MLFeatureProvider {
    var featureNames: Set<String> { get }
    func featureValue(for featureName: String) -> MLFeatureValue?
}
public class MLDictionaryFeatureProvider: MLFeatureProvider {
    public init(dictionary: [String: Any]) throws { fatalError() }
    public var featureNames: Set<String> { fatalError() }
    public func featureValue(for featureName: String) -> MLFeatureValue? { fatalError() }
}
public class MLState {}
public class MLModel {
    public init(contentsOf url: URL, configuration: MLModelConfiguration) throws { fatalError() }
    public class func compileModel(at modelURL: URL) async throws -> URL { fatalError() }
    public func makeState() -> MLState { fatalError() }
    public func prediction(from input: any MLFeatureProvider, using state: MLState) throws -> any MLFeatureProvider { fatalError() }
}
