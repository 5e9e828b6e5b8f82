"""Weight compression for the Core ML program, with coremltools.optimize.coreml (data-free).

- int4: 4-bit linear per block along the input dimension (block 32 by default) with offsets
  (asymmetric), which iOS 18 runs as `constexpr_blockwise_shift_scale`; v_proj, down_proj and the
  token table / output projection at 8 bits per block (the mix every slmkit int4 uses,
  converter/targets/mixed_precision.py). On SmolLM2-135M, symmetric 4-bit everywhere fails parity
  (KL 0.46), asymmetric everywhere too (0.42); the mix passes (0.11), for 36 % more bytes.
- int8: linear symmetric 8-bit per output channel.
- palettize4: 16-entry k-means look-up tables per group of 16 output channels (`constexpr_lut_to_dense`).
fp16 and fp32 keep the weights as converted. The tied embedding table stays one constant shared
by the lookup (`gather`) and the output projection, compressed once.
"""

from __future__ import annotations

import re
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.coreml.fp16_safe import ROPE_TABLE_PREFIX
from slmkit.converter.targets.mixed_precision import EIGHT_BIT_PROJECTIONS, EIGHT_BIT_TABLES

COMPRESSED = ("int8", "int4", "palettize4")
PALETTE_GROUP = 16  # output channels sharing one 16-entry table
# MIL names weights after their PyTorch parameter: model_model_layers_3_mlp_down_proj_weight_to_fp16.
_EIGHT_BIT_NAME = re.compile(r"(^|_)(%s)_weight" % "|".join(EIGHT_BIT_PROJECTIONS + EIGHT_BIT_TABLES))


def compression_config(quant: str, block_size: int, weight_names: list[str]) -> Any:
    """The coremltools config for `quant`; `weight_names` are the program's weight constants."""
    from coremltools.optimize import coreml as cto

    per_name: dict[str, Any] = {}
    if quant == "int4":
        op = cto.OpLinearQuantizerConfig(mode="linear", dtype="int4", granularity="per_block", block_size=block_size)
        eight = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_block",
                                            block_size=block_size)
        per_name = {name: eight for name in weight_names if _EIGHT_BIT_NAME.search(name)}
    elif quant == "int8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    elif quant == "palettize4":
        # One k-means worker: coremltools' process pool, forked after torch started its threads, deadlocks.
        op = cto.OpPalettizerConfig(mode="kmeans", nbits=4, granularity="per_grouped_channel",
                                    group_size=PALETTE_GROUP, num_kmeans_workers=1)
    else:
        raise SlmkitError(f"No Core ML compression named '{quant}'.", hint=f"Use one of: {', '.join(COMPRESSED)}.")
    # RoPE's cos/sin tables are values, not weights: 4-bit angles wreck attention (SmolLM2 int4 KL 0.11 -> 0.26).
    per_name.update({name: None for name in weight_names if ROPE_TABLE_PREFIX in name})
    return cto.OptimizationConfig(global_config=op, op_name_configs=per_name)


def compress(mlmodel: Any, quant: str, block_size: int) -> tuple[Any, dict[str, object]]:
    """The compressed model and what was done (for the manifest)."""
    if quant not in COMPRESSED:
        return mlmodel, {"weights": quant}
    from coremltools.optimize import coreml as cto

    names = [op.name for op in mlmodel._mil_program.functions["main"].operations if op.op_type == "const"]
    config = compression_config(quant, block_size, names)
    if quant == "palettize4":
        compressed = cto.palettize_weights(mlmodel, config)
        details: dict[str, object] = {"weights": "4-bit k-means palettes", "palette_group_channels": PALETTE_GROUP}
    else:
        compressed = cto.linear_quantize_weights(mlmodel, config)
        details = {"weights": f"{quant} linear symmetric", "granularity": "per output channel"}
        if quant == "int4":
            details = {"weights": "int4 linear with offsets; v_proj, down_proj, token table / output projection int8",
                       "granularity": f"per block of {block_size}",
                       "eight_bit_weights": sum(c is not None for c in config.op_name_configs.values())}
    details["compressed_ops"] = _count_compressed(compressed)
    return compressed, details


def _count_compressed(mlmodel: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type.startswith("constexpr_"):
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
    return counts
