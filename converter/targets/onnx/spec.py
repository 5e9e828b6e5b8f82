"""The ONNX target's facts (ONNX Runtime Mobile, onnxruntime-genai)."""

from slmkit.converter.targets.spec import TargetSpec, quant_table

# Stored bits per weight: slmkit's estimates from when the target was written (commit 18125a7), kept
# above the nominal width for MatMulNBits' per-block scales and zero points and the tensors int4 keeps
# at 8 bits (int4-hqq: lm_head, v_proj, down_proj). Used for disk preflight, not for parity.
BITS_PER_WEIGHT = {"fp32": 32.0, "fp16": 16.0, "int8": 9.04, "int4": 6.0, "int4-hqq": 6.4}

SPEC = TargetSpec(
    name="onnx",
    summary="onnx (ONNX Runtime Mobile, onnxruntime-genai)",
    quants=quant_table(__package__, BITS_PER_WEIGHT),
    default_quant="int4",
    # "-mobile" engines run the .ort file instead of model.onnx.
    engines=("onnxruntime-genai", "onnxruntime", "onnxruntime-mobile", "onnxruntime-genai-mobile"),
    tokenizer_dir=".",  # onnxruntime-genai reads tokenizer.json & co. beside genai_config.json
    implementation="slmkit.converter.targets.onnx.target:TARGET",
)
