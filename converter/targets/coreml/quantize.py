"""Weight compression for the Core ML program, one weight at a time, with coremltools.optimize.

- int4: 4-bit linear per block along the input dimension (block 32 by default) with offsets
  (asymmetric), which iOS 18 runs as `constexpr_blockwise_shift_scale`; v_proj, down_proj and the
  token table / output projection at 8 bits per block (the mix every slmkit int4 uses,
  converter/targets/mixed_precision.py). On SmolLM2-135M, symmetric 4-bit everywhere fails parity
  (KL 0.46), asymmetric everywhere too (0.42); the mix passes (0.11), for 36 % more bytes.
- int8: linear symmetric 8-bit per output channel.
- palettize4: 16-entry k-means look-up tables per group of 16 output channels (`constexpr_lut_to_dense`).
fp16 and fp32 keep the weights as they are. The tied token table is one constant shared by the
lookup (`gather`) and the output projection, compressed once. Biases, norms and the RoPE tables
are never compressed (4-bit angles wreck attention: SmolLM2 int4 KL 0.11 -> 0.26).

Each weight goes through the functions coremltools' own `linear_quantize_weights` and
`palettize_weights` passes apply per constant (`blockwise_compress*`), with the block sizes those
passes infer for a [out, in] weight, on the weight rounded to the program's precision, so the
compressed values are the ones the whole-program passes would produce.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.mixed_precision import EIGHT_BIT_PROJECTIONS

COMPRESSED = ("int8", "int4", "palettize4")
PALETTE_GROUP = 16  # output channels sharing one 16-entry table
# Roles (converter/models/decoder.py) int4 keeps at 8 bits: v_proj, down_proj, the token table and
# an untied output projection.
EIGHT_BIT_ROLES = (*(name.removesuffix("_proj") for name in EIGHT_BIT_PROJECTIONS), "table", "head")


@dataclass
class WeightCompressor:
    """Turns each weight [out, in] into a MIL constant (compressed for int8/int4/palettize4)."""

    quant: str
    block_size: int
    ops: Counter = field(default_factory=Counter)  # constexpr op type -> count
    eight_bit: int = 0

    def __post_init__(self) -> None:
        if self.quant not in (*COMPRESSED, "fp16", "fp32"):
            raise SlmkitError(f"No Core ML compression named '{self.quant}'.",
                              hint=f"Use one of: {', '.join(COMPRESSED)}, fp16, fp32.")

    def constant(self, weight: np.ndarray | Iterable[np.ndarray], name: str, role: str) -> Any:
        """`weight` [out, in] in the program's float type, or its row blocks in order (a token table
        is compressed block by block: every scheme here treats rows independently, in groups of
        16 at most, so the result is the same as for the whole table)."""
        from coremltools.converters.mil import Builder as mb

        blocks = [weight] if isinstance(weight, np.ndarray) else weight
        if self.quant not in COMPRESSED:
            return mb.const(val=np.concatenate(list(blocks)), name=name)
        if self.quant == "palettize4":
            return self._palettized(blocks, name)
        if self.quant == "int8":
            return self._linear(blocks, name, "int8", "LINEAR_SYMMETRIC", [1, 0])
        if role in EIGHT_BIT_ROLES:
            self.eight_bit += 1
            return self._linear(blocks, name, "int8", "LINEAR_SYMMETRIC", [1, self.block_size])
        return self._linear(blocks, name, "int4", "LINEAR", [1, self.block_size])

    def _linear(self, blocks: Iterable[np.ndarray], name: str, dtype: str, mode: str, block_sizes: list[int]) -> Any:
        from coremltools.converters.mil import Builder as mb
        from coremltools.optimize.coreml._quantization_passes import linear_quantize_weights

        parts = []
        for rows in blocks:
            params = linear_quantize_weights.blockwise_compress_by_dtype(rows, dtype, mode, block_sizes)
            if params is None:
                raise SlmkitError(f"coremltools cannot quantize {name} (rows of width {rows.shape[1]}) with blocks "
                                  f"{block_sizes}.", hint="Choose another --block-size (a divisor of the hidden size).")
            parts.append(params)
        self.ops["constexpr_blockwise_shift_scale"] += 1
        offsets = None if parts[0].offset is None else np.concatenate([p.offset for p in parts])
        return mb.constexpr_blockwise_shift_scale(data=np.concatenate([p.data for p in parts]),
                                                  scale=np.concatenate([p.scale for p in parts]), offset=offsets,
                                                  name=f"{name}_quantized")

    def _palettized(self, blocks: Iterable[np.ndarray], name: str) -> Any:
        from coremltools.converters.mil.frontend._utils import _construct_constexpr_lut_op
        from coremltools.optimize.coreml._quantization_passes import palettize_weights

        parts = []
        for rows in blocks:
            # One k-means worker: coremltools' process pool, forked after torch started its threads, deadlocks.
            params = palettize_weights.blockwise_compress(rows, "KMEANS", 4, [PALETTE_GROUP, 0], num_kmeans_workers=1)
            if params is None:
                raise SlmkitError(f"coremltools cannot palettize {name} in groups of {PALETTE_GROUP} rows.")
            parts.append(params)
        self.ops["constexpr_lut_to_dense"] += 1
        return _construct_constexpr_lut_op(np.concatenate([p.indices for p in parts]),
                                           np.concatenate([p.lut for p in parts]), parts[0].vector_axis,
                                           name=f"{name}_palettized")

    def describe(self) -> dict[str, object]:
        """How weights are compressed, for the manifest: scheme, granularity, and ops compressed per kind."""
        if self.quant not in COMPRESSED:
            return {"weights": self.quant}
        if self.quant == "palettize4":
            details: dict[str, object] = {"weights": "4-bit k-means palettes", "palette_group_channels": PALETTE_GROUP}
        elif self.quant == "int8":
            details = {"weights": "int8 linear symmetric", "granularity": "per output channel"}
        else:
            details = {"weights": "int4 linear with offsets; v_proj, down_proj, token table / output projection int8",
                       "granularity": f"per block of {self.block_size}", "eight_bit_weights": self.eight_bit}
        details["compressed_ops"] = dict(self.ops)
        return details
