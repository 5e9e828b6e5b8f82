"""Jobs that cannot fit are refused before they start: the numbers, a way out, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmkit.converter import preflight
from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.resolve import resolve
from slmkit.converter.preflight import WeightStats
from slmkit.converter.targets.base import ConvertOptions
from slmkit.converter.targets.registry import get_target
from tests.conftest import run_cli


@pytest.mark.parametrize("target", ["gguf", "onnx", "coreml"])
def test_conversion_that_cannot_fit_is_refused_before_writing(target: str, fixture_dir, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from slmkit.converter.convert import convert

    monkeypatch.setattr(preflight, "available_memory", lambda: 100 * 1024**2)
    model = str(fixture_dir("llama"))
    with pytest.raises(SlmkitError) as error:
        convert(model, resolve(model), target, None, tmp_path / "out", force=False)
    assert "Not enough memory for converting to" in str(error.value) and "0.1 GB are available" in str(error.value)
    assert error.value.hint and list(tmp_path.iterdir()) == []


def test_parity_that_cannot_fit_is_refused_before_the_reference_loads(fixture_dir, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from slmkit.converter.parity import check
    from slmkit.converter.parity.torch_runner import TorchRunner

    artifact = tmp_path / "a"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(artifact)).returncode == 0
    monkeypatch.setattr(preflight, "available_memory", lambda: 100 * 1024**2)
    monkeypatch.setattr(TorchRunner, "load", lambda self: pytest.fail("the reference must not load"))
    with pytest.raises(SlmkitError, match="Not enough memory for the parity reference"):
        check.check_artifact(artifact)


def test_parity_needs_room_for_the_reference_logits(fixture_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from slmkit.converter.parity import check
    from slmkit.converter.parity.torch_runner import TorchRunner

    artifact = tmp_path / "a"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(artifact)).returncode == 0
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    monkeypatch.setattr(TorchRunner, "load", lambda self: pytest.fail("the reference must not load"))
    with pytest.raises(SlmkitError, match="reference logits of this parity run") as error:
        check.check_artifact(artifact)
    assert "TMPDIR" in str(error.value)


def test_estimates_grow_with_the_model(fixture_dir, tmp_path: Path) -> None:
    """Each target's estimate is driven by the shapes (the token table dominates small models)."""
    from slmkit.converter.models.synth import synthesize, text_config
    from slmkit.runtime.models.recipe import get_recipe

    def shrink(config: dict) -> None:
        text_config(config).update(num_hidden_layers=1, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                                   num_key_value_heads=2, head_dim=16)  # Llama 3.2's 128K-token table kept

    wide = synthesize(get_recipe("llama-3.2-1b"), tmp_path / "wide", config_transform=shrink,
                      tokenizer_from=fixture_dir("llama"))
    small, large = resolve(str(fixture_dir("llama"))), resolve(str(wide))
    assert WeightStats.of(large).table > 100 * WeightStats.of(small).table
    for name in ("gguf", "onnx", "coreml"):
        target = get_target(name)
        quant = target.default_quant
        assert preflight.BASE_BYTES < target.estimate_memory(small, quant, ConvertOptions()) \
            <= target.estimate_memory(large, quant, ConvertOptions())
