"""Quantize the exported fp32 decoder with onnxruntime's own quantizers.

Weight-only, block-wise `MatMulNBits` (the op family onnxruntime-genai runs), int8 activations per
block (accuracy level 4, onnxruntime's fast CPU path):
- int8: every MatMul at 8 bits, symmetric.
- int4: the body at 4 bits, round-to-nearest asymmetric (uint8 zero points); v_proj, down_proj
  and the output projection at 8 bits, as llama.cpp's Q4_K_M spends more bits on `attn_v`,
  `ffn_down` and `output`. onnxruntime's fast kernel; passes parity on both embedded models.
- int4-hqq: the same mix with HQQ (float zero points, no calibration data) for the body: far
  closer on SmolLM2 (KL 0.002 vs 0.11) but float zero points have no fast kernel in
  onnxruntime 1.32 on x86 (decode ~10x slower). docs/onnx.md has both measurements.
A tied embedding reads the output projection's packed weights through `GatherBlockQuantized`
(same zero-point convention), so the largest tensor is stored once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slmkit.converter.targets.mixed_precision import EIGHT_BIT_PROJECTIONS
from slmkit.converter.targets.onnx import graph as rewrite

if TYPE_CHECKING:
    import onnx

# int4 keeps these projections at 8 bits (converter/targets/mixed_precision.py).
INT4_EIGHT_BIT_WEIGHTS = tuple(f".{role}.weight" for role in EIGHT_BIT_PROJECTIONS)
# Accuracy level 4 (int8 activations per block) is onnxruntime's fast CPU path; level 0 and HQQ's
# float zero points fall back to kernels 5-10x slower at decode (docs/onnx.md).
ACCURACY_LEVEL = {"int8": 4, "int4": 4, "int4-hqq": 4}


@dataclass
class QuantizeReport:
    tied_embeddings: str  # "shared" | "untied" | "stored twice (...)"
    details: dict[str, object] = field(default_factory=dict)


def quantize(model: onnx.ModelProto, quant: str, block_size: int) -> QuantizeReport:
    """Rewrite `model` in place into the requested precision."""
    tied = rewrite.find_tied_head(model)
    if quant in ("fp32", "fp16"):
        if tied:
            rewrite.head_as_gemm(model, tied)
        if quant == "fp16":
            _to_fp16(model)
        return QuantizeReport("shared" if tied else "untied", {"io_types": "float32"} if quant == "fp16" else {})
    head = rewrite.head_node(model)
    hidden = None
    if tied:
        hidden = rewrite.initializer(model.graph, tied.table).dims[1]
        rewrite.untie_for_quantizer(model, tied)
    share = tied is not None and hidden % block_size == 0
    accuracy = ACCURACY_LEVEL[quant]
    details: dict[str, object] = {"block_size": block_size, "accuracy_level": accuracy}
    if quant.startswith("int4"):
        eight_bit = _matmuls_reading(model, INT4_EIGHT_BIT_WEIGHTS)
        if quant == "int4-hqq":
            _hqq(model, block_size, exclude=[head.name, *eight_bit])
            details["body"] = "4-bit HQQ (float zero points); v_proj and down_proj 8-bit symmetric"
        else:
            _rtn(model, 4, block_size, accuracy, exclude=[head.name, *eight_bit], symmetric=False)
            details["body"] = "4-bit asymmetric (uint8 zero points); v_proj and down_proj 8-bit symmetric"
        _rtn(model, 8, block_size, accuracy, include=[head.name, *eight_bit])
        details["output_projection"] = "8-bit symmetric"
    else:
        _rtn(model, 8, block_size, accuracy)
        details["body"] = details["output_projection"] = "8-bit symmetric"
    if share:
        rewrite.retie_quantized(model, tied, 8, block_size)  # the output projection is 8-bit in both
        details["embedding"] = "shares the output projection's weights"
        return QuantizeReport("shared", details)
    width = hidden if tied else _embedding_width(model)
    if width % block_size == 0:  # untied: the table gets its own packed copy
        bits = 4 if quant.startswith("int4") else 8
        rewrite.quantize_embedding(model, bits, block_size)
        details["embedding"] = f"{bits}-bit symmetric (GatherBlockQuantized)"
        return QuantizeReport("untied", details)
    details["embedding"] = f"float32 (width {width} is not a multiple of block size {block_size})"
    return QuantizeReport("stored twice (float32 lookup table + quantized projection)" if tied else "untied", details)


def _matmuls_reading(model: onnx.ModelProto, suffixes: tuple[str, ...]) -> list[str]:
    """Names of the MatMul nodes whose weight is one of the named parameters (see name_matmul_weights)."""
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1].removesuffix(".T").endswith(suffixes)]


def _embedding_width(model: onnx.ModelProto) -> int:
    gather = next(n for n in model.graph.node if n.op_type == "Gather" and "input_ids" in n.input)
    return rewrite.initializer(model.graph, gather.input[0]).dims[1]


def _run(quantizer) -> onnx.ModelProto:
    noisy = logging.getLogger("onnxruntime.quantization")
    level = noisy.level
    noisy.setLevel(logging.ERROR)  # one INFO line per node
    try:
        quantizer.process()
    finally:
        noisy.setLevel(level)
    return quantizer.model.model


def _replace(model: onnx.ModelProto, result: onnx.ModelProto) -> None:
    if result is not model:
        model.CopyFrom(result)


def _rtn(model: onnx.ModelProto, bits: int, block_size: int, accuracy: int, *,
         include: list[str] | None = None, exclude: list[str] | None = None, symmetric: bool = True) -> None:
    """Round-to-nearest; symmetric is the layout GatherBlockQuantized can share."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=symmetric,
                                     accuracy_level=accuracy or None, op_types_to_quantize=("MatMul",),
                                     nodes_to_include=include, nodes_to_exclude=exclude)
    _replace(model, _run(quantizer))


def _hqq(model: onnx.ModelProto, block_size: int, *, exclude: list[str]) -> None:
    """Half-Quadratic Quantization: optimizes each block's scale and zero point, no data needed."""
    import warnings

    from onnxruntime.quantization.matmul_nbits_quantizer import HQQWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = HQQWeightOnlyQuantConfig(block_size=block_size, bits=4, op_types_to_quantize=("MatMul",))
    quantizer = MatMulNBitsQuantizer(model, algo_config=config, nodes_to_exclude=exclude)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.from_numpy on read-only arrays
        _replace(model, _run(quantizer))
    for node in model.graph.node:
        if node.op_type == "MatMulNBits" and node.name not in exclude:
            _set_accuracy_level(node, ACCURACY_LEVEL["int4-hqq"])


def _set_accuracy_level(node: onnx.NodeProto, level: int) -> None:
    from onnx import helper

    kept = [a for a in node.attribute if a.name != "accuracy_level"]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute("accuracy_level", level)])


def _to_fp16(model: onnx.ModelProto) -> None:
    """fp16 weights and compute; inputs, outputs and the KV cache stay fp32 for the caller."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    _replace(model, convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True))
    rewrite.topological_sort(model.graph)
