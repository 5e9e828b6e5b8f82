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


@dataclass(frozen=True)
class HostSpeed:
    """What the host measured on the real model during the run."""

    decode_tps: float
    prefill_tps: float


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

    def to_dict(self) -> dict:
        return asdict(self)


def predict(device: DeviceProfile, footprint: ModelFootprint, host: HostCalibration,
            measured: HostSpeed | None) -> DevicePrediction:
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
                            ram_needed <= device.usable_ram_gb, device_limit, efficiency, decode, prefill)


def require_fit(prediction: DevicePrediction, device: DeviceProfile, tier: str) -> None:
    """A model that does not fit is refused, never simulated as if it did."""
    if not prediction.fits:
        raise SlmkitError(
            f"Tier {tier!r}: {prediction.model} needs about {prediction.ram_needed_gb:.2f} GB "
            f"(weights + KV cache + runtime) but {device.label} gives one app about {device.usable_ram_gb:g} GB.",
            hint="Pick a smaller or more quantized model, a shorter context_tokens, or another --device.")
