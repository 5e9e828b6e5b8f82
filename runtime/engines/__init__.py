"""The on-device engines, one module each: how slmkit opens a model file, tokenizes, renders the
chat prompt and reads logits with llama.cpp (GGUF), onnxruntime-genai and onnxruntime (ONNX) and
Core ML. The runtime's tier backends (runtime/backends) and parity's runners (converter/targets/*)
both go through these functions, so parity measures the code path apps and the server run.

Torch-free; each engine's library is imported only when a model is opened.
"""
