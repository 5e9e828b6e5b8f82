"""The speed transfer: host efficiency x device bandwidth limit x sustained factor; RAM fit refuses."""

from pathlib import Path

import pytest

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.simulate.devices import builtin_devices
from slmkit.runtime.simulate.hostcal import HostCalibration
from slmkit.runtime.simulate.speed import (RUNTIME_OVERHEAD_BYTES, HostSpeed, ModelFootprint, gguf_footprint, predict,
                                           require_fit)

HOST = HostCalibration(bandwidth_gbs=20.0, gflops=100.0, cpu="test", cores=2)
MODEL = ModelFootprint("m.gguf", weight_bytes=10**9, kv_bytes_per_token=100_000, context_tokens=4096)


def test_decode_transfers_the_hosts_share_of_its_bandwidth_limit() -> None:
    device = builtin_devices()["iphone-15-pro"]
    prediction = predict(device, MODEL, HOST, HostSpeed(decode_tps=10.0, prefill_tps=50.0))
    assert prediction.efficiency == pytest.approx(10.0 / 20.0)           # host limit = 20 GB/s / 1 GB
    assert prediction.bandwidth_limit_tps == pytest.approx(device.bandwidth_gbs)
    assert prediction.decode_tps == pytest.approx(0.5 * device.bandwidth_gbs * device.sustained_factor)
    assert prediction.prefill_tps == pytest.approx(50.0 * device.gflops / 100.0 * device.sustained_factor)
    assert prediction.decode_tps < prediction.bandwidth_limit_tps


def test_faster_memory_predicts_faster_decode() -> None:
    devices = builtin_devices()
    speed = HostSpeed(decode_tps=10.0, prefill_tps=50.0)
    pi, phone, mac = (predict(devices[n], MODEL, HOST, speed).decode_tps for n in ("raspberry-pi-5", "iphone-15-pro", "m3-max"))
    assert pi < phone < mac


def test_ram_fit_counts_weights_kv_cache_and_runtime() -> None:
    devices = builtin_devices()
    prediction = predict(devices["raspberry-pi-5"], MODEL, HOST, None)
    assert prediction.ram_needed_gb == pytest.approx((10**9 + 100_000 * 4096 + RUNTIME_OVERHEAD_BYTES) / 1e9)
    assert prediction.fits
    huge = ModelFootprint("gemma-3-12b-q4.gguf", 7 * 10**9, 400_000, 8192)
    too_big = predict(devices["iphone-15-pro"], huge, HOST, None)
    assert not too_big.fits
    with pytest.raises(SlmkitError, match=r"gemma-3-12b-q4.gguf needs about 10\.\d+ GB .* about 4 GB"):
        require_fit(too_big, devices["iphone-15-pro"], "on-device")


def test_gguf_footprint_reads_the_attention_shape() -> None:
    """SmolLM2-135M: 30 layers x 3 KV heads x head size 64, K and V in f16."""
    path = resolve_model_file("embedded:smollm2-135m", Path("."))
    footprint = gguf_footprint(path, 2048)
    assert footprint.weight_bytes == path.stat().st_size
    assert footprint.kv_bytes_per_token == 2 * 30 * 3 * 64 * 2


def test_a_busy_or_unusual_host_is_flagged_beside_the_expected_range() -> None:
    from slmkit.runtime.simulate.speed import EXPECTED_EFFICIENCY

    device = builtin_devices()["iphone-15-pro"]
    quiet = predict(device, MODEL, HOST, HostSpeed(decode_tps=10.0, prefill_tps=50.0, cpu_share=0.98))
    assert EXPECTED_EFFICIENCY[0] <= quiet.efficiency <= EXPECTED_EFFICIENCY[1] and quiet.warnings == ()
    assert quiet.expected_efficiency == EXPECTED_EFFICIENCY and quiet.host_cpu_share == 0.98
    busy = predict(device, MODEL, HOST, HostSpeed(decode_tps=0.66, prefill_tps=50.0, cpu_share=0.49))
    assert len(busy.warnings) == 2
    assert busy.warnings[0].startswith("the host was busy: the engine's threads got 49 % of their CPU time")
    assert busy.warnings[1].startswith("host efficiency 3.3 % is below the 25-80 %")
    odd = predict(device, MODEL, HOST, HostSpeed(decode_tps=19.0, prefill_tps=50.0))
    assert odd.warnings == (odd.warnings[0],) and "above the 25-80 %" in odd.warnings[0] and "--recalibrate" in odd.warnings[0]
