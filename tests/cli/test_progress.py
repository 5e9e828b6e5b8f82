"""cli/progress.py: one display whose rows count in their own unit (a package run mixes both)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from slmkit.cli import progress as display
from slmkit.runtime.progress import Steps


@pytest.mark.parametrize("width", [160, 80])
def test_a_row_counting_bytes_shows_sizes_and_a_row_counting_prompts_shows_n_of_m(monkeypatch, width: int) -> None:
    """At 80 columns too: a long description is cut, never the amount."""
    out = io.StringIO()
    monkeypatch.setattr(display, "_console", Console(file=out, width=width, force_terminal=False))
    with display.progress_callback() as callback:
        steps = Steps(callback)
        writing = steps.start("Writing F16 GGUF (weights streamed to model.onnx.data, layers read one at a time)",
                              total=3_000_000, unit="bytes")
        writing.advance(3_000_000)
        writing.finish()
        parity = steps.start("Parity model.gguf", total=9)
        for _ in range(9):
            parity.advance()
        parity.finish()
    text = out.getvalue()
    assert "Writing F16 GGUF" in text and "Parity model.gguf" in text, text
    assert all(len(line) <= width for line in text.splitlines()) and len(text.splitlines()) == 2, text
    writing_line = next(line for line in text.splitlines() if "GGUF" in line)
    parity_line = next(line for line in text.splitlines() if "Parity" in line)
    assert "3.0/3.0 MB" in writing_line and "/9" not in writing_line, writing_line
    assert "9/9" in parity_line and "bytes" not in parity_line and "MB" not in parity_line, parity_line
