"""Make a decoder's arithmetic safe for fp16 compute (Core ML on GPU / Neural Engine).

fp16 holds values up to 65504 with 11 significant bits; a program with fp16 compute precision
runs *every* op in it, including the ones transformers deliberately keeps in float32. The program
builder (converter/targets/coreml/program.py) applies three rewrites, each exact in real arithmetic:

Range: small LMs carry "massive activations" in their residual stream: on the calibration text
below, SmolLM2-135M reaches 2.6e4 and Gemma 3 270M 1.0e5 (inf in fp16), and every RMSNorm squares
its input.
1. Every RMSNorm computes (x/s) * rsqrt(mean((x/s)^2) + eps/s^2) with s = max|x| (clamped below),
   so nothing is squared beyond 1.
2. The residual stream is divided by a power of two k (exact in floating point): the embedding
   output and each residual writer's output are scaled by 1/k, each norm reading the stream gets
   eps/k^2. RMSNorm is scale-invariant, so every norm output, and the logits, stay the same.
   k is the smallest power of two that brings the calibrated peak under `TARGET_PEAK`; this module
   calibrates it by running the reference on the texts below.
Precision: RoPE angles are position x frequency; in fp16 position 900 carries an angle error up
to 0.4 rad, and positions past 2048 are not even integers.
3. cos/sin come from tables computed in float32 for every cache position and looked up by
   position (a gather), as the weights are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import torch

    from slmkit.converter.architectures import Architecture
    from slmkit.converter.models.checkpoint import Checkpoint

# Peak the scaled stream may reach on the calibration text: 32x below fp16's maximum, as unseen
# inputs go further than any calibration set.
TARGET_PEAK = 2048.0
# Varied text (prose, code, numbers, markup, other scripts): outlier channels fire on all of it.
CALIBRATION_TEXTS = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France, and Berlin is the capital of Germany.",
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Invoice #4821: 3 x $19.99 = $59.97; tax 8.25% -> $4.95; total $64.92 (paid 2024-03-15).",
    '{"user": {"id": 1024, "name": "Ana", "roles": ["admin", "editor"], "active": true}}',
    "Summarize: The meeting moved to Thursday at 3 pm because the design review ran long; bring the Q3 numbers.",
    "Il était une fois un dragon qui aimait les nombres. 東京は日本の首都です。 Привет, как дела?",
)


@dataclass(frozen=True)
class Fp16Range:
    peak: float  # largest |activation| in the residual stream on the calibration text
    scale: int  # k: the stream is divided by this power of two

    def describe(self) -> dict[str, object]:
        return {"residual_peak": round(self.peak, 1), "residual_scale": f"1/{self.scale}"}


def calibrate(ckpt: Checkpoint) -> Fp16Range:
    """The residual peak of the checkpoint on the calibration text, with its layers read from disk
    one at a time (the memory of one float32 layer plus the token table)."""
    import gc

    from slmkit.converter.models.reference import load_reference_model

    model = load_reference_model(ckpt, streamed=True)
    peak = residual_peak(model, ckpt.path, ckpt.architecture)
    del model
    gc.collect()
    return Fp16Range(peak, stream_scale(peak))


def residual_peak(model: torch.nn.Module, tokenizer_dir: Path, arch: Architecture) -> float:
    """The largest |value| the residual stream or a residual writer's output takes on the calibration text."""
    import torch

    from slmkit.converter.tokenizer_files import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    peak = 0.0

    def record(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal peak
        peak = max(peak, float(output.abs().max()))

    writers = residual_writers(arch)
    hooks = [module.register_forward_hook(record) for name, module in model.named_modules()
             if name.rsplit(".", 1)[-1] in writers]
    try:
        with torch.no_grad():
            for text in CALIBRATION_TEXTS:
                ids = torch.tensor([tokenizer(text, add_special_tokens=True)["input_ids"]])
                # The decoder without its output projection: the head's logits are not needed, and
                # widening a 262K-row token table for them doubled a 1B conversion's peak RSS.
                out = model.base_model(input_ids=ids, output_hidden_states=True, use_cache=False)
                peak = max(peak, *(float(h.abs().max()) for h in out.hidden_states))
    finally:
        for hook in hooks:
            hook.remove()
    return peak


def residual_writers(arch: Architecture) -> tuple[str, ...]:
    """Modules whose output is added to the residual stream: a block's output norm where the
    architecture has one (Gemma's sandwich norms), else its output projections."""
    norms = arch.layer_norms
    if "attn_out_norm" in norms:
        return norms["attn_out_norm"], norms["mlp_out_norm"]
    return "o_proj", "down_proj"


def stream_scale(peak: float) -> int:
    """The power of two that brings the residual stream's `peak` down to TARGET_PEAK or below (1 if it is)."""
    return 2 ** max(0, math.ceil(math.log2(peak / TARGET_PEAK))) if peak > 0 else 1


