"""Architecture rules the graph builders implement, each broken on purpose.

Shared by the ONNX and Core ML builder tests: for every rule, the builder with the rule intact
matches PyTorch within the fp32 parity bound, and with the rule broken it misses that bound by
far, so parity would fail (a test that cannot see its bug is no test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.converter.models.decoder import DecoderSpec, DecoderWeights, LayerWeights, Rope

Mutation = Callable[[DecoderSpec, DecoderWeights], tuple[DecoderSpec, Any]]
# (spec, weights, an empty folder to build in) -> logits [len(IDS), vocab] of the built artifact
BuildLogits = Callable[[DecoderSpec, Any, Path], np.ndarray]
# 300 tokens: past Gemma's 16-token window and Phi's 256-token original context in the fixtures.
IDS = [(i * 37 + 11) % 390 + 5 for i in range(300)]


def _spec(**changes: Any) -> Mutation:
    return lambda spec, weights: (replace(spec, **changes), weights)


def _ropes(change: Callable[[Rope, DecoderSpec], Rope]) -> Mutation:
    return lambda spec, weights: (replace(spec, ropes={t: change(r, spec) for t, r in spec.ropes.items()}), weights)


def _local_rope_everywhere(spec: DecoderSpec, weights: DecoderWeights) -> tuple[DecoderSpec, Any]:
    return replace(spec, ropes=dict.fromkeys(spec.ropes, spec.ropes["full_attention"])), weights


def _plain_rope(rope: Rope, spec: DecoderSpec) -> Rope:
    """Unscaled frequencies over the whole head (no llama3 scaling, no partial rotary)."""
    dim = spec.head_dim
    inv_freq = (1.0 / 10000.0 ** (np.arange(0, dim, 2, dtype=np.float32) / dim)).astype(np.float32)
    return Rope(inv_freq, 1.0)


class _NoBiases:
    """Weights without the Q/K/V biases (Qwen 2)."""

    def __init__(self, weights: DecoderWeights) -> None:
        self._weights = weights

    def layer(self, index: int) -> LayerWeights:
        layer = self._weights.layer(index)
        return LayerWeights({k: v for k, v in layer.tensors.items() if not k.endswith("_bias")})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._weights, name)


def _unscaled_full_attention(spec: DecoderSpec, weights: DecoderWeights) -> tuple[DecoderSpec, Any]:
    """Gemma 3 4B/12B divide full-attention frequencies by the linear factor: drop that division."""
    full = spec.ropes["full_attention"]
    factor = spec.ropes["sliding_attention"].inv_freq[0] / full.inv_freq[0]  # the same first frequency, scaled
    return replace(spec, ropes={**spec.ropes, "full_attention": replace(full, inv_freq=full.inv_freq * factor)}), weights


def _tied(spec: DecoderSpec, weights: DecoderWeights) -> tuple[DecoderSpec, Any]:
    """Qwen 2's untied head replaced by the token table (a writer that assumes tied embeddings)."""
    return replace(spec, tied=True), weights


# rule -> (fixture, mutation)
MUTATIONS: dict[str, tuple[str, Mutation]] = {
    "gemma3 RMSNorm stores w - 1": ("gemma3", _spec(norm_shift=0.0)),
    "gemma3 embeddings scaled by sqrt(hidden)": ("gemma3", _spec(embed_scale=None)),
    "gemma3 sliding window": ("gemma3", _spec(sliding_window=10**6)),
    "gemma3 local RoPE base on sliding layers": ("gemma3", _local_rope_everywhere),
    "gemma3 tanh-GELU MLP": ("gemma3", _spec(activation="silu")),
    "gemma3 QK-norm": ("gemma3", _spec(qk_norm=False)),
    "llama3 RoPE scaling": ("llama3-rope", _ropes(_plain_rope)),
    "phi3 longrope long factors": ("phi4-mini", _ropes(lambda rope, spec: replace(rope, long_inv_freq=None))),
    "phi3 partial rotary": ("phi4-mini", _ropes(_plain_rope)),
    "qwen2 Q/K/V biases": ("qwen2", lambda spec, weights: (spec, _NoBiases(weights))),
    "qwen2 untied output projection": ("qwen2", _tied),
    "gemma3 linear RoPE scaling (4B/12B)": ("gemma3-multimodal", _unscaled_full_attention),
}


def reference_logits(ckpt: Any, ids: list[int]) -> np.ndarray:
    import torch

    from slmkit.converter.models.reference import load_reference_model

    with torch.no_grad():
        return load_reference_model(ckpt)(input_ids=torch.tensor([ids])).logits[0].numpy()


def kl_mean(expected: np.ndarray, got: np.ndarray) -> float:
    from slmkit.converter.parity.metrics import kl_divergence

    return float(kl_divergence(expected, got).mean())


def intact_runs(fixture_dir: Callable[[str], Path], folders: Callable[[str], Path],
                build_logits: BuildLogits) -> Callable[[str], tuple]:
    """Per fixture, built once: (checkpoint, spec, PyTorch logits, the intact artifact's KL against them)."""
    from slmkit.converter.models.decoder import decoder_spec
    from slmkit.converter.models.resolve import resolve

    cache: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in cache:
            ckpt = resolve(str(fixture_dir(name)))
            spec = decoder_spec(ckpt)
            expected = reference_logits(ckpt, IDS)
            got = build_logits(spec, DecoderWeights(ckpt, spec), folders(name))
            cache[name] = (ckpt, spec, expected, kl_mean(expected, got))
        return cache[name]

    return get


def assert_rule_is_needed(target: str, rule: str, intact: Callable[[str], tuple], build_logits: BuildLogits,
                          folder: Path) -> None:
    """The intact artifact passes `target`'s fp32 bound; with `rule` broken it misses it tenfold."""
    from slmkit.converter.targets.registry import get_target_spec

    fixture, mutate = MUTATIONS[rule]
    ckpt, spec, expected, intact_kl = intact(fixture)
    bound = get_target_spec(target).quant("fp32").thresholds["kl_mean_max"]
    assert intact_kl < bound, f"the intact artifact must pass fp32 parity ({intact_kl:.3g})"
    broken = kl_mean(expected, build_logits(*mutate(spec, DecoderWeights(ckpt, spec)), folder))
    assert broken > 10 * bound, f"breaking '{rule}' must fail parity (KL {broken:.3g})"
