"""Device profiles are data with sources; bad names and files get one clear message."""

from pathlib import Path

import pytest

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.simulate.devices import builtin_devices, get_device, load_devices

PROMISED = {"iphone-15-pro", "iphone-16-pro", "pixel-8", "galaxy-s24", "raspberry-pi-5", "jetson-orin-nano", "m3-max",
            "laptop-16gb"}


def test_every_promised_device_is_there_with_sources_and_sane_numbers() -> None:
    devices = builtin_devices()
    assert PROMISED <= set(devices)
    for device in devices.values():
        assert device.sources and all(s.startswith("https://") for s in device.sources)
        assert device.usable_ram_gb < device.ram_gb
        assert device.bandwidth_gbs < device.peak_bandwidth_gbs


def test_anchor_bandwidths() -> None:
    """anchors.md: iPhone 15 Pro ~51 GB/s, Pixel 8 ~67, M3 Max 400, Raspberry Pi 5 ~11-17."""
    devices = builtin_devices()
    assert devices["iphone-15-pro"].peak_bandwidth_gbs == pytest.approx(51, abs=1)
    assert devices["pixel-8"].peak_bandwidth_gbs == pytest.approx(67, abs=2)
    assert devices["m3-max"].peak_bandwidth_gbs == 400
    assert 11 <= devices["raspberry-pi-5"].bandwidth_gbs <= 17


def test_unknown_device_suggests_close_names() -> None:
    with pytest.raises(SlmkitError, match="Unknown device 'iphone-15'") as info:
        get_device("iphone-15", builtin_devices())
    assert "iphone-15-pro" in info.value.hint


def test_extra_profiles_add_and_override(tmp_path: Path) -> None:
    extra = tmp_path / "devices.yaml"
    extra.write_text("devices:\n  watch:\n    label: A watch\n    kind: wearable\n    peak_bandwidth_gbs: 8\n"
                     "    bandwidth_fraction: 0.5\n    peak_gflops: 50\n    compute_fraction: 0.5\n    ram_gb: 1\n"
                     "    usable_ram_gb: 0.2\n    sustained_factor: 0.5\n    network_rtt_ms: 80\n"
                     "    sources: [https://example.org/watch]\n")
    devices = load_devices(extra)
    assert devices["watch"].bandwidth_gbs == 4 and "pixel-8" in devices


@pytest.mark.parametrize("text, message", [
    ("devices: [1, 2]", "not a device-profile file"),
    ("devices:\n  x:\n    label: X\n", "device profile field"),
    (": : :", "not a device-profile file"),
])
def test_bad_profile_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(SlmkitError, match=message):
        load_devices(bad)
