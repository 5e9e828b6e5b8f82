"""Targets as plug-ins: specs come from the `slmkit.targets` entry points, carry every fact the CLI,
preflight and parity read, and refuse malformed data."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from slmkit.converter.targets import registry
from slmkit.converter.targets.spec import THRESHOLD_KEYS, QuantSpec, TargetSpec
from slmkit.runtime import plugins
from slmkit.runtime.errors import SlmkitError

BOUNDS = dict.fromkeys(THRESHOLD_KEYS, 0.5)


def test_our_targets_are_installed_entry_points() -> None:
    specs = registry.target_specs()
    assert list(specs)[:3] == ["gguf", "onnx", "coreml"]
    for spec in specs.values():
        implementation = registry.get_target(spec.name)
        assert implementation.spec is spec and implementation.quants == spec.quant_names
        assert spec.default_quant in spec.quant_names and spec.engines


def test_help_and_estimates_read_the_spec() -> None:
    assert "gguf: f32 (32), f16 (16), bf16 (16), q8_0 (8.5), q6_k (6.6" in registry.quant_help()
    assert registry.get_target_spec("gguf").quant("q8_0").stored_bytes(1000) == pytest.approx(1062.5)
    assert registry.get_target_spec("onnx").quant("int4").thresholds["kl_mean_max"] == 0.3


def test_unknown_names_are_one_clear_error() -> None:
    with pytest.raises(SlmkitError, match="Unknown target 'tflite'"):
        registry.get_target_spec("tflite")
    with pytest.raises(SlmkitError, match="has no quantization 'q2_k'"):
        registry.get_target_spec("gguf").quant("q2_k")


def _clear() -> None:
    plugins.plugin_points.cache_clear()
    registry.target_specs.cache_clear()


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *extra: SimpleNamespace) -> None:
    real = plugins.entry_points
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real(group=group), *extra])
    _clear()


def test_a_third_party_target_plugs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = TargetSpec("tflite", "tflite (LiteRT)", (QuantSpec("int8", 8.0, BOUNDS),), "int8", ("litert",), ".",
                        "example_tflite.target:TARGET")
    _with_entry_points(monkeypatch, SimpleNamespace(name="tflite", value="example_tflite.spec:SPEC", load=lambda: plugin))
    try:
        assert registry.get_target_spec("tflite") is plugin
        assert registry.quant_help().endswith("tflite: int8 (8)") and "litert" in registry.engine_help()
    finally:
        _clear()


def test_an_entry_point_that_is_not_a_target_spec_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, SimpleNamespace(name="bad", value="x:Y", load=lambda: object()))
    try:
        with pytest.raises(SlmkitError, match="'bad'.*is not a TargetSpec"):
            registry.target_specs()
    finally:
        _clear()


def test_malformed_specs_fail_when_built() -> None:
    with pytest.raises(ValueError, match="thresholds missing"):
        QuantSpec("int8", 8.0, {"top1_min": 0.9})
    with pytest.raises(ValueError, match="bits_per_weight"):
        QuantSpec("int8", 0.0, BOUNDS)
    with pytest.raises(ValueError, match="default 'q4'"):
        TargetSpec("x", "x", (QuantSpec("int8", 8.0, BOUNDS),), "q4", ("e",), ".", "m:T")
