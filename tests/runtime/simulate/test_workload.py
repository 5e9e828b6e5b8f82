"""Workloads: the train-set format or OpenAI chat logs, labels optional, bad lines skipped by byte offset."""

import json
from pathlib import Path

import pytest

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.simulate.workload import read_workload

LABELS = ("simple", "medium", "complex")


def test_mixed_formats_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"prompt": "Classify: great product", "tier": "simple"}),
        json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}),
        "{not json",
        json.dumps({"request": {"model": "gpt-5", "messages": [{"role": "user", "content": "Prove it."}]}, "tier": "complex"}),
        json.dumps({"body": {"messages": [{"role": "assistant", "content": "no user turn"}]}}),
        json.dumps([1, 2]),
        json.dumps({"prompt": "x", "tier": "trivial"}),
        "",
    ]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(lines) + "\n")
    data = read_workload([str(path)], LABELS)
    assert [i.request.user for i in data.items] == ["Classify: great product", "Hi", "Prove it."]
    assert [i.tier for i in data.items] == ["simple", None, "complex"]
    assert data.items[1].request.system == "Be brief."
    offsets = [sum(len(line) + 1 for line in lines[:i]) for i in (2, 4, 5, 6)]
    assert [s.split(":")[0] for s in data.skipped] == [f"{path} byte {offset}" for offset in offsets]
    assert data.skipped[0].endswith("not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")


def test_sample_is_seeded_and_limit_keeps_the_first(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(50)))
    a = [i.request.user for i in read_workload([str(path)], LABELS, sample=10, seed=3).items]
    assert a == [i.request.user for i in read_workload([str(path)], LABELS, sample=10, seed=3).items] and len(set(a)) == 10
    assert [i.request.user for i in read_workload([str(path)], LABELS, limit=3).items] == ["q0", "q1", "q2"]


def test_no_usable_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("nope\n")
    with pytest.raises(SlmkitError, match="holds no usable requests.*byte 0: not JSON"):
        read_workload([str(path)], LABELS)
    with pytest.raises(SlmkitError, match="No data file"):
        read_workload([str(tmp_path / "missing.jsonl")], LABELS)
