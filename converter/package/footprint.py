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
    config = ckpt.text_config
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or config["hidden_size"] // heads)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    return 2 * int(config["num_hidden_layers"]) * kv_heads * head_dim * KV_BYTES_PER_VALUE


def model_bytes(folder: Path) -> int:
    """Everything but the tokenizer and bookkeeping: the weights the engine maps."""
    skip = {"manifest.json", "parity.json"}
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and p.name not in skip and "tokenizer" not in p.relative_to(folder).parts[0])


def device_table(footprint: ModelFootprint, devices: list[DeviceProfile]) -> list[dict]:
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
