"""What each platform's bundle holds: the artifact target, the engine its app runs, the router
head it can compute, the app template and the devices its RAM/speed table is checked against."""

from __future__ import annotations

from dataclasses import dataclass

from slmkit.runtime.spec import ALL_CONFIDENCE_METHODS


@dataclass(frozen=True)
class Platform:
    name: str
    target: str                 # the artifact the app runs
    backend: str                # the routing spec's backend name for the on-device tier
    router: str                 # "mobile": hashed n-gram head (the Kotlin/Swift ports); "default": + sentence encoder
    template: str | None        # folder under mobile_templates/
    devices: tuple[str, ...]    # device profiles (runtime/simulate/devices.yaml) the bundle must fit
    # Confidence methods the app's engine can run (runtime/confidence/). onnxruntime-genai's Java API
    # gives no access to logits (its Tensor exposes type and shape only, sources up to 2026-08), so the
    # Android engine runs the rating prompt only.
    confidence_methods: tuple[str, ...] = ALL_CONFIDENCE_METHODS


PLATFORMS = {
    "ios": Platform("ios", "coreml", "coreml", "mobile", "ios", ("iphone-15-pro", "iphone-16-pro")),
    "android": Platform("android", "onnx", "onnxruntime-genai", "mobile", "android", ("pixel-8", "galaxy-s24"),
                        confidence_methods=("sampled_rating",)),
    "desktop": Platform("desktop", "gguf", "llama.cpp", "default", None,
                        ("raspberry-pi-5", "jetson-orin-nano", "laptop-16gb", "m3-max")),
}
