"""onnxruntime-genai's `model.type` per architecture (genai_config.json), keyed by the decoder's
`config.model_type`: names onnxruntime-genai accepts for a decoder-only model (`ModelType::IsLLM`,
src/models/model_type.h). An architecture without a row is refused by the ONNX target."""

from __future__ import annotations

GENAI_TYPES: dict[str, str] = {
    "llama": "llama",
    "gemma3_text": "gemma3_text",
    "qwen2": "qwen2",
    "phi3": "phi3",
}
