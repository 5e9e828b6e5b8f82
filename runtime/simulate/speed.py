"""Predicted on-device speed and memory fit, transferred from what the host measures.

decode tokens/s  = efficiency x device bandwidth / bytes read per token, where efficiency is the
                   host's own measured decode rate x bytes per token / host bandwidth (so a
                   runtime that reaches 40 % of the bandwidth limit here is assumed to reach
                   40 % there); then x the device's sustained (thermal) factor.
prefill tokens/s = host prefill rate x device compute / host compute x sustained factor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.simulate.devices import DeviceProfile
from slmkit.runtime.simulate.hostcal import HostCalibration

RUNTIME_OVERHEAD_BYTES = 150 * 1024**2   # engine, tokenizer, scratch buffers (llama.cpp compute buffers ~100 MB)
KV_BYTES_PER_VALUE = 2                   # f16 cache


@dataclass(frozen=True)
class ModelFootprint:
    name: str
    weight_bytes: int
    kv_bytes_per_token: int
    context_tokens: int

    @property
    def ram_bytes(self) -> int:
        return self.weight_bytes + self.kv_bytes_per_token * self.context_tokens + RUNTIME_OVERHEAD_BYTES


def gguf_footprint(path: Path, context_tokens: int) -> ModelFootprint:
    """Weights = the file; KV per token from the GGUF's own attention shape (read without loading weights)."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    try:
        with suppress_stdout_stderr(disable=False):  # a vocab-only load warns about its (unused) context size
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise SlmkitError(f"llama.cpp cannot read {path}: {exc}") from None
    meta = dict(llm.metadata)
    llm.close()
    arch = meta.get("general.architecture", "")

    def number(key: str, default: int | None = None) -> int:
        value = meta.get(f"{arch}.{key}")
        if value is None:
            if default is None:
                raise SlmkitError(f"{path.name} lacks {arch}.{key}; cannot size its KV cache.")
            return default
        return int(float(value))

    heads = number("attention.head_count")
    head_dim = number("attention.key_length", number("embedding_length") // heads)
    kv_heads = number("attention.head_count_kv", heads)
    per_token = 2 * number("block_count") * kv_heads * head_dim * KV_BYTES_PER_VALUE
    return ModelFootprint(path.name, path.stat().st_size, per_token, context_tokens)


# The share of its bandwidth limit llama.cpp's CPU decode reaches on a quiet host: 28 % for the
# 135M SmolLM2 on one thread (overhead-bound) to 77 % for a Gemma 3 1B-shaped Q4_K_M on two
# (bandwidth-bound), measured 2026-12-05 on 2 vCPUs with bench/host_efficiency.py (docs/simulate.md
# has the table). Outside it the host was busy or unusual, and the transfer to a device is off by
# the same factor.
EXPECTED_EFFICIENCY = (0.25, 0.80)
BUSY_CPU_SHARE = 0.8   # below this share of their CPU time, the engine's threads were waiting for cores


@dataclass(frozen=True)
class HostSpeed:
    """What the host measured on the real model during the run."""

    decode_tps: float
    prefill_tps: float
    cpu_share: float = 1.0   # CPU time the engine's threads got while decoding, of what they asked for


@dataclass(frozen=True)
class DevicePrediction:
    device: str
    model: str
    ram_needed_gb: float
    usable_ram_gb: float
    fits: bool
    bandwidth_limit_tps: float     # device bandwidth / bytes per token: no runtime can beat it
    efficiency: float              # share of the limit the host's runtime reached
    decode_tps: float
    prefill_tps: float
    host_cpu_share: float | None = None                       # HostSpeed.cpu_share of the speed test
    expected_efficiency: tuple[float, float] = EXPECTED_EFFICIENCY
    warnings: tuple[str, ...] = ()                            # why this prediction may be off

    def to_dict(self) -> dict:
        return asdict(self)


def predict(device: DeviceProfile, footprint: ModelFootprint, host: HostCalibration,
            measured: HostSpeed | None) -> DevicePrediction:
    """Decode and prefill tokens/s of `footprint` on `device`: decode is memory-bound (bandwidth / bytes
    read per token) at the efficiency llama.cpp reached on this host (`measured` vs the host's own
    bandwidth bound), prefill scales the host's measured rate by compute (GFLOP/s); both times the
    device's sustained (thermal) factor. Without a measurement the speeds are 0 (unknown).
    """
    bytes_per_token = footprint.weight_bytes
    host_limit = host.bandwidth_gbs * 1e9 / bytes_per_token
    device_limit = device.bandwidth_gbs * 1e9 / bytes_per_token
    if measured is None:
        efficiency = decode = prefill = 0.0
    else:
        efficiency = min(1.0, measured.decode_tps / host_limit)
        decode = efficiency * device_limit * device.sustained_factor
        prefill = measured.prefill_tps * device.gflops / host.gflops * device.sustained_factor
    ram_needed = footprint.ram_bytes / 1e9
    return DevicePrediction(device.name, footprint.name, ram_needed, device.usable_ram_gb,
                            ram_needed <= device.usable_ram_gb, device_limit, efficiency, decode, prefill,
                            None if measured is None else measured.cpu_share,
                            warnings=() if measured is None else speed_warnings(efficiency, measured.cpu_share))


def speed_warnings(efficiency: float, cpu_share: float) -> tuple[str, ...]:
    """Why a measured host speed may not transfer: the engine was starved of CPU, or its
    efficiency is outside what llama.cpp reaches on a quiet host (EXPECTED_EFFICIENCY)."""
    low, high = EXPECTED_EFFICIENCY
    warnings = []
    if cpu_share < BUSY_CPU_SHARE:
        warnings.append(f"the host was busy: the engine's threads got {100 * cpu_share:.0f} % of their CPU time during "
                        f"the speed test; predicted speeds are low by about that factor (rerun on a quiet machine)")
    if not low <= efficiency <= high:
        side = "below" if efficiency < low else "above"
        warnings.append(f"host efficiency {100 * efficiency:.1f} % is {side} the {100 * low:.0f}-{100 * high:.0f} % llama.cpp "
                        f"reaches on a quiet host; the device prediction inherits the difference"
                        + (" (rerun with --recalibrate if the bandwidth was measured on a busy host)" if side == "above" else ""))
    return tuple(warnings)


def require_fit(prediction: DevicePrediction, device: DeviceProfile, tier: str) -> None:
    """A model that does not fit is refused, never simulated as if it did."""
    if not prediction.fits:
        raise SlmkitError(
            f"Tier {tier!r}: {prediction.model} needs about {prediction.ram_needed_gb:.2f} GB "
            f"(weights + KV cache + runtime) but {device.label} gives one app about {device.usable_ram_gb:g} GB.",
            hint="Pick a smaller or more quantized model, a shorter context_tokens, or another --device.")
