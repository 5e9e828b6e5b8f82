"""Make a decoder's arithmetic safe for fp16 compute (Core ML on GPU / Neural Engine).

fp16 holds values up to 65504 with 11 significant bits; a program converted with fp16 compute
precision runs *every* op in it, including the ones transformers deliberately keeps in float32.
Three rewrites of the PyTorch module before tracing, each exact in real arithmetic:

Range: small LMs carry "massive activations" in their residual stream: on the calibration text
below, SmolLM2-135M reaches 2.6e4 and Gemma 3 270M 1.0e5 (inf in fp16), and every RMSNorm squares
its input.
1. Every RMSNorm computes (x/s) * rsqrt(mean((x/s)^2) + eps/s^2) with s = max|x| (clamped below),
   so nothing is squared beyond 1.
2. The residual stream is divided by a power of two k (exact in floating point): the embedding
   output and each residual writer's output are scaled by 1/k, each norm reading the stream gets
   eps/k^2. RMSNorm is scale-invariant, so every norm output, and the logits, stay the same.
   k is the smallest power of two that brings the calibrated peak under `TARGET_PEAK`.
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

from slmkit.converter.errors import SlmkitError

if TYPE_CHECKING:
    import torch

    from slmkit.converter.architectures import Architecture

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
    norms: int  # RMSNorms rewritten

    def describe(self) -> dict[str, object]:
        return {"residual_peak": round(self.peak, 1), "residual_scale": f"1/{self.scale}",
                "fp16_safe_norms": self.norms}


def residual_peak(model: torch.nn.Module, tokenizer_dir: Path, arch: Architecture) -> float:
    """The largest |value| the residual stream or a residual writer's output takes on the calibration text."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    peak = 0.0

    def record(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal peak
        peak = max(peak, float(output.abs().max()))

    hooks = [module.register_forward_hook(record) for name, module in model.named_modules()
             if name.rsplit(".", 1)[-1] in arch.residual_writers]
    try:
        with torch.no_grad():
            for text in CALIBRATION_TEXTS:
                ids = torch.tensor([tokenizer(text, add_special_tokens=True)["input_ids"]])
                out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
                peak = max(peak, *(float(h.abs().max()) for h in out.hidden_states))
    finally:
        for hook in hooks:
            hook.remove()
    return peak


def stream_scale(peak: float) -> int:
    return 2 ** max(0, math.ceil(math.log2(peak / TARGET_PEAK))) if peak > 0 else 1


def make_fp16_safe(model: torch.nn.Module, arch: Architecture, tokenizer_dir: Path | None) -> Fp16Range:
    """Rewrite `model` in place (norms always; the stream scale calibrated when a tokenizer is given)."""
    import torch

    peak = residual_peak(model, tokenizer_dir, arch) if tokenizer_dir is not None else 0.0
    scale = stream_scale(peak)
    inverse = 1.0 / scale
    layers = model.config.num_hidden_layers
    norms = writers = readers = 0
    for name, module in model.named_modules():
        role = name.rsplit(".", 1)[-1]
        if type(module).__name__.endswith("RMSNorm"):
            reads, writes = role in arch.residual_readers, role in arch.residual_writers
            _rewrite_rms_norm(module, arch.norm_shift, stream=inverse if reads else 1.0,
                              out=inverse if writes else 1.0)
            norms += 1
            readers += reads
            writers += writes
        elif role in arch.residual_writers and isinstance(module, torch.nn.Linear):
            with torch.no_grad():
                module.weight.mul_(inverse)
                if module.bias is not None:
                    module.bias.mul_(inverse)
            writers += 1
    if writers != 2 * layers or readers != 2 * layers + 1:
        raise SlmkitError(f"The residual stream of {arch.model_type} does not match slmkit's architecture table "
                          f"({writers} writers, {readers} reading norms for {layers} layers).",
                          hint="Report the model; nothing was written.")
    if scale > 1:
        model.get_input_embeddings().register_forward_hook(lambda module, inputs, output: output * inverse)
    return Fp16Range(peak, scale, norms)


ROPE_TABLE_PREFIX = "rope_table_"  # buffer names; weight compression leaves these constants alone


def rope_tables(model: torch.nn.Module, length: int) -> int:
    """Replace every rotary embedding's on-the-fly cos/sin by float32 tables for positions
    0..length-1, registered as buffers (so the trace keeps them as named constants), filled on
    first call per layer type. Returns how many rotary modules were replaced."""
    import torch

    replaced = 0
    for module in model.modules():
        if not type(module).__name__.endswith("RotaryEmbedding"):
            continue
        original, slots = module.forward, {}

        def forward(x: torch.Tensor, position_ids: torch.Tensor, *args, _module=module, _original=original,
                    _slots=slots, **kwargs):
            key = (args, tuple(sorted(kwargs.items())))
            if key not in _slots:
                with torch.no_grad():
                    cos, sin = _original(x.float(), torch.arange(length).view(1, length), *args, **kwargs)
                _slots[key] = len(_slots)
                _module.register_buffer(f"{ROPE_TABLE_PREFIX}cos_{_slots[key]}", cos[0].float(), persistent=False)
                _module.register_buffer(f"{ROPE_TABLE_PREFIX}sin_{_slots[key]}", sin[0].float(), persistent=False)
            cos = getattr(_module, f"{ROPE_TABLE_PREFIX}cos_{_slots[key]}")
            sin = getattr(_module, f"{ROPE_TABLE_PREFIX}sin_{_slots[key]}")
            return cos[position_ids].to(x.dtype), sin[position_ids].to(x.dtype)

        module.forward = forward
        replaced += 1
    with torch.no_grad():  # fill the tables now: buffers registered mid-trace would become anonymous constants
        model(input_ids=torch.zeros((1, 1), dtype=torch.long), use_cache=False)
    return replaced


def _rewrite_rms_norm(module: torch.nn.Module, shift: float, stream: float, out: float) -> None:
    """`stream`: the scale of the input relative to the original (1/k for readers); `out`: output scale."""
    import torch

    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    if eps is None:
        raise SlmkitError(f"{type(module).__name__} has no epsilon attribute slmkit knows.",
                          hint="Report the model; nothing was written.")
    # Input x = stream * x_orig: eps scales by stream^2. Clamping s at `stream` keeps eps/s^2 <= eps
    # (representable in fp16) and an all-zero row finite.
    eps_scaled, floor = float(eps) * stream * stream, stream

    def forward(x: torch.Tensor) -> torch.Tensor:
        s = x.abs().amax(-1, keepdim=True).clamp(min=floor)
        scaled = x / s
        normed = scaled * torch.rsqrt(scaled.pow(2).mean(-1, keepdim=True) + eps_scaled / s / s)
        return normed * ((module.weight + shift) * out)

    module.forward = forward
