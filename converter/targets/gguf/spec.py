"""The GGUF target's facts (llama.cpp)."""

from slmkit.converter.targets.spec import TargetSpec, quant_table

# Stored bits per weight: the f/bf types exactly; q8_0 and the K-quants from llama.cpp's
# tools/quantize/README.md size table (8.5, 6.56, 5.69, 4.89 bpw for 7B-class models).
BITS_PER_WEIGHT = {"f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.6, "q5_k_m": 5.7, "q4_k_m": 4.9}

SPEC = TargetSpec(
    name="gguf",
    summary="gguf (llama.cpp)",
    quants=quant_table(__package__, BITS_PER_WEIGHT),
    default_quant="q4_k_m",
    engines=("llama.cpp",),
    tokenizer_dir="tokenizer",  # the GGUF embeds its tokenizer; the files are kept for reference
    implementation="slmkit.converter.targets.gguf.target:TARGET",
)
