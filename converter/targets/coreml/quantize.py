"""Weight compression for the Core ML program, with coremltools.optimize.coreml (data-free).

- int4: linear symmetric 4-bit per block along the input dimension (block 32 by default), which
  iOS 18 runs as `constexpr_blockwise_shift_scale`.
- int8: linear symmetric 8-bit per output channel.
- palettize4: 16-entry k-means look-up tables per group of 16 output channels (`constexpr_lut_to_dense`).
fp16 and fp32 keep the weights as converted. The tied embedding table stays one constant shared
by the lookup (`gather`) and the output projection, compressed once.
"""

from __future__ import annotations

import os
from typing import Any

from slmkit.converter.errors import SlmkitError

COMPRESSED = ("int8", "int4", "palettize4")
PALETTE_GROUP = 16  # output channels sharing one 16-entry table


def compression_config(quant: str, block_size: int, workers: int = 1) -> Any:
    from coremltools.optimize import coreml as cto

    if quant == "int4":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                         block_size=block_size)
    elif quant == "int8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    elif quant == "palettize4":
        op = cto.OpPalettizerConfig(mode="kmeans", nbits=4, granularity="per_grouped_channel",
                                    group_size=PALETTE_GROUP, num_kmeans_workers=workers)
    else:
        raise SlmkitError(f"No Core ML compression named '{quant}'.", hint=f"Use one of: {', '.join(COMPRESSED)}.")
    return cto.OptimizationConfig(global_config=op)


def compress(mlmodel: Any, quant: str, block_size: int) -> tuple[Any, dict[str, object]]:
    """The compressed model and what was done (for the manifest)."""
    if quant not in COMPRESSED:
        return mlmodel, {"weights": quant}
    from coremltools.optimize import coreml as cto

    config = compression_config(quant, block_size, workers=max(1, os.cpu_count() or 1))
    if quant == "palettize4":
        compressed = cto.palettize_weights(mlmodel, config)
        details: dict[str, object] = {"weights": "4-bit k-means palettes", "palette_group_channels": PALETTE_GROUP}
    else:
        compressed = cto.linear_quantize_weights(mlmodel, config)
        details = {"weights": f"{quant} linear symmetric",
                   "granularity": f"per block of {block_size}" if quant == "int4" else "per output channel"}
    details["compressed_ops"] = _count_compressed(compressed)
    return compressed, details


def _count_compressed(mlmodel: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type.startswith("constexpr_"):
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
    return counts
