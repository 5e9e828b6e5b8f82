"""A conversion that fails while building (a layer cannot be read) leaves no folder behind, on
every target whose builder works layer by layer."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError


@pytest.mark.parametrize(("target", "module", "builder", "quant"), [
    ("onnx", "slmkit.converter.targets.onnx.decoder_graph", "DecoderGraph", "int4"),
    ("coreml", "slmkit.converter.targets.coreml.program", "DecoderProgram", "fp16"),
])
def test_build_failing_midway_leaves_nothing(target: str, module: str, builder: str, quant: str, fixture_dir,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slmkit.converter.convert import convert
    from slmkit.converter.models.resolve import resolve

    def broken(self, i, *args, **kwargs):
        raise SlmkitError(f"disk vanished while reading layer {i}")

    monkeypatch.setattr(getattr(importlib.import_module(module), builder), "_layer", broken)
    model = str(fixture_dir("llama"))
    with pytest.raises(SlmkitError, match="disk vanished"):
        convert(model, resolve(model), target, quant, tmp_path / "out", force=False)
    assert list(tmp_path.iterdir()) == []
