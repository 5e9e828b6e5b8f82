"""Every progress step a conversion starts is finished, in the unit it counts (a row left spinning after its
work is done — the ONNX graph row once did — tells the user the job is still busy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmkit.converter.models.resolve import resolve
from slmkit.runtime.progress import ProgressEvent


@pytest.mark.parametrize("target, quant, bytes_rows", [("onnx", "int4", 1), ("gguf", "q8_0", 2), ("coreml", "fp16", 1)])
def test_every_conversion_step_finishes(target: str, quant: str, bytes_rows: int, fixture_dir, tmp_path: Path) -> None:
    from slmkit.converter.convert import convert

    events: list[ProgressEvent] = []
    model = str(fixture_dir("llama"))
    convert(model, resolve(model), target, quant, tmp_path / "out", force=False, progress=events.append)
    last = {event.step: event for event in events}
    assert last and all(event.done for event in last.values()), [e.description for e in last.values() if not e.done]
    assert sum(event.unit == "bytes" for event in last.values()) == bytes_rows
    assert all(event.completed == event.total for event in last.values() if event.total is not None)
