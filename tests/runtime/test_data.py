"""Labelled request files: both formats of the shared set, bad lines reported and skipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from slmkit.runtime.data import read_dataset
from slmkit.runtime.errors import SlmkitError


def test_reads_prompt_and_context_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"id": "a", "prompt": "Summarize:", "context": "Doc.", "tier": "simple", "source": "s", "template": "t"}),
             "{not json", json.dumps({"prompt": "x", "tier": "trivial"}), json.dumps(["list"]), "",
             json.dumps({"prompt": "", "tier": "simple"}), json.dumps({"prompt": "no label"}),
             json.dumps({"prompt": "Prove it.", "tier": "complex", "system": "You are a mathematician."})]
    path = tmp_path / "data.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    data = read_dataset(path)
    assert [i.request.user for i in data.items] == ["Summarize:\n\nDoc.", "Prove it."]
    assert data.items[1].request.system == "You are a mathematician." and data.labels == ["simple", "complex"]
    assert [s.split(":")[0] for s in data.skipped] == ["line 2", "line 3", "line 4", "line 6", "line 7"]
    assert "tier 'trivial'" in data.skipped[1]


def test_unusable_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="No data file"):
        read_dataset(tmp_path / "none.jsonl")
    (tmp_path / "bad.jsonl").write_text("nope\n", encoding="utf-8")
    with pytest.raises(SlmkitError, match="no usable labelled requests .line 1"):
        read_dataset(tmp_path / "bad.jsonl")
    (tmp_path / "bin.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SlmkitError, match="Cannot read"):
        read_dataset(tmp_path / "bin.jsonl.gz")
