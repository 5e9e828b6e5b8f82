"""How each weight of the ONNX decoder is stored, and onnxruntime's own quantizers applied per tensor.

Weight-only, block-wise `MatMulNBits` (the op family onnxruntime-genai runs), int8 activations per
block (accuracy level 4, onnxruntime's fast CPU path):
- int8: every projection at 8 bits, symmetric.
- int4: the body at 4 bits, round-to-nearest asymmetric (uint8 zero points); v_proj, down_proj
  and the output projection at 8 bits, as llama.cpp's Q4_K_M spends more bits on `attn_v`,
  `ffn_down` and `output` (converter/targets/mixed_precision.py). onnxruntime's fast kernel;
  passes parity on both embedded models.
- int4-hqq: the same mix with HQQ (float zero points, no calibration data) for the body: far
  closer on SmolLM2 (KL 0.002 vs 0.11) but float zero points have no fast kernel in
  onnxruntime 1.32 on x86 (decode ~10x slower). docs/onnx.md has both measurements.
A tied embedding reads the output projection's packed weights through `GatherBlockQuantized`
(same zero-point convention), so the largest tensor is stored once; an untied one is packed
the same way at the body's width.

Each tensor is quantized as it is read (`DefaultWeightOnlyQuantizer.qbits_block_quant`,
`HQQWeightOnlyQuantizer.quantize_internal`: the functions onnxruntime's `MatMulNBitsQuantizer`
applies node by node), so the packed bytes are those onnxruntime's whole-graph pass would write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slmkit.converter.targets.mixed_precision import EIGHT_BIT_PROJECTIONS

# Block sizes onnxruntime 1.32's MatMulNBits quantizers and CPU kernels accept.
BLOCK_SIZES = (16, 32, 64, 128, 256)
# Accuracy level 4 (int8 activations per block) is onnxruntime's fast CPU path; level 0 and HQQ's
# float zero points fall back to kernels 5-10x slower at decode (docs/onnx.md).
ACCURACY_LEVEL = 4
# Projection roles of converter/models/decoder.py that int4 keeps at 8 bits.
EIGHT_BIT_ROLES = tuple(name.removesuffix("_proj") for name in EIGHT_BIT_PROJECTIONS)


@dataclass(frozen=True)
class WeightFormat:
    """How one projection weight is stored."""

    method: str  # "float" | "rtn" | "hqq"
    bits: int = 0
    symmetric: bool = True

    @property
    def quantized(self) -> bool:
        return self.method != "float"


FLOAT = WeightFormat("float")
EIGHT_BIT = WeightFormat("rtn", 8, symmetric=True)


@dataclass(frozen=True)
class QuantPlan:
    """The storage of every weight role for one `--quant`."""

    quant: str
    block_size: int
    body: WeightFormat  # q, k, o, gate, up
    eight_bit_roles: tuple[str, ...]  # roles stored as EIGHT_BIT instead of `body`
    head: WeightFormat
    untied_embedding_bits: int  # GatherBlockQuantized width of an untied table; 0 = float

    def projection(self, role: str) -> WeightFormat:
        return EIGHT_BIT if role in self.eight_bit_roles else self.body

    def describe(self) -> dict[str, object]:
        """The weight formats for the manifest (empty for float): block size, accuracy level, body and head."""
        if not self.body.quantized:
            return {}
        body = {"rtn": f"{self.body.bits}-bit {'symmetric' if self.body.symmetric else 'asymmetric (uint8 zero points)'}",
                "hqq": "4-bit HQQ (float zero points)"}[self.body.method]
        if self.eight_bit_roles:
            body += f"; {', '.join(f'{r}_proj' for r in self.eight_bit_roles)} 8-bit symmetric"
        return {"block_size": self.block_size, "accuracy_level": ACCURACY_LEVEL, "body": body,
                "output_projection": "8-bit symmetric"}


def quant_plan(quant: str, block_size: int) -> QuantPlan:
    """The weight formats of `quant`: fp32/fp16 float; int8 8-bit symmetric everywhere; int4 and
    int4-hqq 4-bit (RTN or HQQ, asymmetric) with EIGHT_BIT_ROLES and the output projection at 8 bits.
    """
    if quant in ("fp32", "fp16"):
        return QuantPlan(quant, block_size, FLOAT, (), FLOAT, 0)
    if quant == "int8":
        return QuantPlan(quant, block_size, EIGHT_BIT, (), EIGHT_BIT, 8)
    body = WeightFormat("hqq", 4, symmetric=False) if quant == "int4-hqq" else WeightFormat("rtn", 4, symmetric=False)
    return QuantPlan(quant, block_size, body, EIGHT_BIT_ROLES, EIGHT_BIT, 4)


@dataclass
class PackedWeight:
    """MatMulNBits' inputs for a weight W [N=out, K=in]: packed [N, k_blocks, blob] uint8,
    scales [N, k_blocks] (HQQ: flat), zero points (uint8 packed, or HQQ's float) or None."""

    packed: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray | None
    k: int
    n: int
    bits: int
    block_size: int


def pack(weight: np.ndarray, fmt: WeightFormat, block_size: int) -> PackedWeight:
    """Quantize a float32 weight in PyTorch's Linear layout [out, in]."""
    n, k = weight.shape
    if fmt.method == "hqq":
        return _hqq(weight, fmt.bits, block_size)
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 DefaultWeightOnlyQuantizer)

    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=fmt.symmetric, bits=fmt.bits,
                                          accuracy_level=ACCURACY_LEVEL)
    packed, scales, zero_points = DefaultWeightOnlyQuantizer(config).qbits_block_quant(
        np.ascontiguousarray(weight.T, dtype=np.float32))
    return PackedWeight(packed, scales, None if fmt.symmetric else zero_points, k, n, fmt.bits, block_size)


def _hqq(weight: np.ndarray, bits: int, block_size: int) -> PackedWeight:
    """HQQ as onnxruntime's HQQWeightOnlyQuantizer.quantize lays it out for MatMulNBits."""
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import HQQWeightOnlyQuantConfig, HQQWeightOnlyQuantizer

    quantizer = HQQWeightOnlyQuantizer(HQQWeightOnlyQuantConfig(block_size=block_size, bits=bits))
    n, k = weight.shape
    q, scales, zero_points = quantizer.quantize_internal(torch.from_numpy(np.ascontiguousarray(weight)), bits=bits,
                                                         group_size=block_size)
    q = q.contiguous()
    per_byte = 8 // bits
    packed = torch.zeros((q.shape[0], q.shape[1] // per_byte), dtype=torch.uint8)
    quantizer.pack_on_row_fast_248bit(packed, q, bits)
    k_blocks = (k + block_size - 1) // block_size
    packed = packed.reshape(n, k_blocks, block_size // per_byte).numpy()
    return PackedWeight(packed, scales.contiguous().numpy().reshape(-1), zero_points.contiguous().numpy().reshape(-1),
                        k, n, bits, block_size)
