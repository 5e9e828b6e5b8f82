"""What a target is, as data: its quantizations (stored bits per weight, parity bounds), engines,
tokenizer layout and help text. A target's `spec.py` builds one `TargetSpec` importing nothing
heavy; the CLI's help, preflight's size estimates, parity's thresholds and packaging read it, and
the conversion code behind `implementation` is imported only when a target is used.

Third-party targets plug in the same way as ours: an entry point in the `slmkit.targets` group
naming a `TargetSpec` (pyproject.toml; `registry.py` loads them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

import yaml

from slmkit.runtime.errors import SlmkitError

# Parity bounds every quantization sets (docs/parity.md); a metric fails when worse than its bound:
#   top1_min        share of positions where the artifact's argmax equals the reference's
#   kl_mean_max     mean KL(reference || artifact) over all prompt positions (nats)
#   kl_p99_max      99th percentile of the per-position KL (robust worst case)
#   kl_max_max      the single worst position (catches a catastrophic token, loosely)
#   greedy_min      mean share of greedy tokens equal to the reference before the first divergence
#   decode_kl_max   mean KL on the cached decode steps (catches KV-cache bugs prefill cannot)
#   ppl_delta_max   relative perplexity change on the prompts, either direction
THRESHOLD_KEYS = ("top1_min", "kl_mean_max", "kl_p99_max", "kl_max_max", "greedy_min", "decode_kl_max", "ppl_delta_max")


@dataclass(frozen=True)
class QuantSpec:
    """One quantization of one target.

    bits_per_weight: stored bits per parameter in the artifact's model file (disk and RAM
    estimates before converting; the source of each figure is noted where the table is built).
    thresholds: parity bounds, THRESHOLD_KEYS -> value.
    """

    name: str
    bits_per_weight: float
    thresholds: Mapping[str, float] = field(repr=False)

    def __post_init__(self) -> None:
        if self.bits_per_weight <= 0:
            raise ValueError(f"quant {self.name}: bits_per_weight must be > 0")
        missing = set(THRESHOLD_KEYS) - set(self.thresholds)
        extra = set(self.thresholds) - set(THRESHOLD_KEYS)
        if missing or extra:
            raise ValueError(f"quant {self.name}: thresholds missing {sorted(missing)}, unknown {sorted(extra)}")

    def stored_bytes(self, parameters: int) -> float:
        """Bytes `parameters` weights take in the artifact at this quantization."""
        return parameters * self.bits_per_weight / 8


@dataclass(frozen=True)
class TargetSpec:
    """A target's facts. `implementation` is "module:attribute" of the object that converts and
    runs artifacts (`slmkit.converter.targets.base.Target`); `engines[0]` is parity's default."""

    name: str
    summary: str
    quants: tuple[QuantSpec, ...]
    default_quant: str
    engines: tuple[str, ...]
    tokenizer_dir: str
    implementation: str

    def __post_init__(self) -> None:
        names = self.quant_names
        if len(set(names)) != len(names) or self.default_quant not in names:
            raise ValueError(f"target {self.name}: duplicate quants or default {self.default_quant!r} not among {names}")
        if not self.engines or ":" not in self.implementation:
            raise ValueError(f"target {self.name}: needs engines and an implementation 'module:attribute'")

    @property
    def quant_names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.quants)

    def quant(self, name: str) -> QuantSpec:
        """Raises: SlmkitError naming the target's quantizations when `name` is not one."""
        for quant in self.quants:
            if quant.name == name:
                return quant
        raise SlmkitError(f"Target '{self.name}' has no quantization '{name}'.",
                          hint=f"Choose one of: {', '.join(self.quant_names)}.")


def quant_table(package: str, bits: Mapping[str, float]) -> tuple[QuantSpec, ...]:
    """QuantSpecs in `bits`' order, with parity bounds from `package`'s thresholds.yaml (one row per quant)."""
    table = yaml.safe_load(resources.files(package).joinpath("thresholds.yaml").read_text(encoding="utf-8"))
    if set(table) != set(bits):
        raise ValueError(f"{package}/thresholds.yaml has rows {sorted(table)}; the target's quants are {sorted(bits)}")
    return tuple(QuantSpec(name, value, table[name]) for name, value in bits.items())
