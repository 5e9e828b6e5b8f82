"""RAM and speed of a packaged model on each target device: weights on disk + f16 KV cache at the
tier's context + runtime, against the device's budget; decode at the bandwidth limit x the share
good mobile runtimes reach (anchors: 60-75 %)."""

from __future__ import annotations

from pathlib import Path

from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.runtime.simulate.devices import DeviceProfile
from slmkit.runtime.simulate.speed import KV_BYTES_PER_VALUE, ModelFootprint

ASSUMED_EFFICIENCY = 0.65


def kv_bytes_per_token(ckpt: Checkpoint) -> int:
    """KV-cache bytes per token of context: keys and values for every layer and KV head
    (2 x layers x kv_heads x head_dim x KV_BYTES_PER_VALUE).
    """
    config = ckpt.text_config
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    return 2 * int(config["num_hidden_layers"]) * kv_heads * head_dim * KV_BYTES_PER_VALUE


def model_bytes(folder: Path, model_file: str) -> int:
    """The weights the engine maps: the artifact's model file (a folder for .mlpackage) and its
    external data, not sibling formats of the same weights (the .ort next to an .onnx)."""
    main = folder / model_file
    parts = [main, *folder.glob(f"{model_file}.data")]  # ONNX external weights (models over 2 GB)
    total = 0
    for part in parts:
        total += sum(p.stat().st_size for p in part.rglob("*") if p.is_file()) if part.is_dir() else part.stat().st_size
    return total


def device_table(footprint: ModelFootprint, devices: list[DeviceProfile]) -> list[dict]:
    """Per device: RAM needed (GB = 1e9 bytes: weights + KV cache at the footprint's context +
    runtime/simulate/speed.py's RUNTIME_OVERHEAD_BYTES, 150 MiB) vs usable, the
    memory-bandwidth bound on decode (tokens/s = bandwidth / weight bytes) and the decode speed
    expected at ASSUMED_EFFICIENCY of it, times the device's sustained factor.
    """
    rows = []
    for device in devices:
        ram = footprint.ram_bytes / 1e9
        limit = device.bandwidth_gbs * 1e9 / footprint.weight_bytes
        rows.append({"device": device.name, "label": device.label, "ram_needed_gb": round(ram, 3),
                     "usable_ram_gb": device.usable_ram_gb, "fits": ram <= device.usable_ram_gb,
                     "bandwidth_limit_tps": round(limit, 1),
                     "expected_decode_tps": round(limit * ASSUMED_EFFICIENCY * device.sustained_factor, 1),
                     "assumed_efficiency": ASSUMED_EFFICIENCY})
    return rows
