// swift-tools-version:6.0
// Compile check of the Core ML engine target (and its tests) where Core ML does not exist: the rendered
// package's Sources/ and Tests/SlmkitRoutingTests are copied beside API stubs of Core ML and
// swift-transformers (signatures as documented; bodies never run). It proves the engine uses only the
// core's public API and those signatures; the macOS workflow proves it against the real frameworks.
import PackageDescription
let package = Package(
    name: "EngineCheck",
    targets: [
        .target(name: "CoreML"), .target(name: "Tokenizers"), .target(name: "SlmkitRoutingCore"),
        .target(name: "SlmkitRouting", dependencies: ["SlmkitRoutingCore", "CoreML", "Tokenizers"]),
        .testTarget(name: "SlmkitRoutingTests", dependencies: ["SlmkitRouting", "CoreML"]),
    ],
    swiftLanguageModes: [.v5]
)
