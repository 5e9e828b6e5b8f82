"""The Core ML target's facts (iOS 18 / macOS 15, stateful KV cache)."""

import platform

from slmkit.converter.targets.spec import TargetSpec, quant_table

# Stored bits per weight: slmkit's estimates from when the target was written (commit 1f7d7fd): blockwise
# int4 with fp16 scales per 32 weights (4.5 nominal), palettize4 with a 16-entry fp16 table per 16
# output channels, int8 with per-channel scales. Used for disk and memory preflight.
BITS_PER_WEIGHT = {"fp16": 16.0, "int8": 8.4, "int4": 4.8, "palettize4": 4.4, "fp32": 32.0}
EVALUATOR, EVALUATOR_FP32, COREML = "coreml-evaluator", "coreml-evaluator-fp32", "coreml"

SPEC = TargetSpec(
    name="coreml",
    summary="coreml (iOS 18 / macOS 15)",
    quants=quant_table(__package__, BITS_PER_WEIGHT),
    default_quant="int4",
    # The numpy evaluator (device-like fp16 rounding, or exact fp32) everywhere; real Core ML on macOS.
    engines=(COREML, EVALUATOR, EVALUATOR_FP32) if platform.system() == "Darwin" else (EVALUATOR, EVALUATOR_FP32, COREML),
    tokenizer_dir="tokenizer",
    implementation="slmkit.converter.targets.coreml.target:TARGET",
)
