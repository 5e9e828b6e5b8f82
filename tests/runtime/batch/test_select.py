"""runtime/batch/select.py: the --sample/--limit selection both batch routing commands read."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from slmkit.runtime.batch.route import parse_input
from slmkit.runtime.batch.select import select_lines, selection_jsonl
from slmkit.runtime.errors import SlmkitError

LABELS = ("simple", "medium", "complex")


def _data(tmp_path: Path) -> Path:
    lines = [json.dumps({"prompt": f"q{i}", "tier": LABELS[i % 3]}) for i in range(30)]
    lines[4] = json.dumps({"prompt": "unlabelled"})
    lines[7] = "not json"
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sample_is_seeded_keeps_file_order_and_limit_comes_after(tmp_path: Path) -> None:
    path = str(_data(tmp_path))
    parse = partial(parse_input, labels=LABELS, workload=False)
    first, skipped = select_lines([path], parse, "labelled requests", sample=10, seed=3)
    again, _ = select_lines([path], parse, "labelled requests", sample=10, seed=3)
    other, _ = select_lines([path], parse, "labelled requests", sample=10, seed=4)
    prompts = [record["prompt"] for record, _ in first]
    assert prompts == [record["prompt"] for record, _ in again] and len(set(prompts)) == 10
    assert prompts != [record["prompt"] for record, _ in other]
    assert prompts == sorted(prompts, key=lambda p: int(p[1:]))           # file order kept
    limited, _ = select_lines([path], parse, "labelled requests", sample=10, limit=3, seed=3)
    assert [record["prompt"] for record, _ in limited] == prompts[:3]
    assert len(skipped) == 2 and "no `tier` label" in skipped[0] and skipped[0].startswith(f"{path} byte ")


def test_a_workload_keeps_unlabelled_lines_and_nothing_usable_is_one_error(tmp_path: Path) -> None:
    path = str(_data(tmp_path))
    chosen, skipped = select_lines([path], partial(parse_input, labels=LABELS, workload=True), "requests")
    assert len(chosen) == 29 and len(skipped) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(SlmkitError, match="holds no usable requests"):
        select_lines([str(bad)], partial(parse_input, labels=LABELS, workload=True), "requests")


def test_limit_alone_stops_reading_at_the_nth_usable_line(tmp_path: Path) -> None:
    path = str(_data(tmp_path))
    chosen, skipped = select_lines([path], partial(parse_input, labels=LABELS, workload=False), "x", limit=3)
    assert [record["prompt"] for record, _ in chosen] == ["q0", "q1", "q2"] and skipped == []   # the bad lines come later
    chosen, skipped = select_lines([path], partial(parse_input, labels=LABELS, workload=False), "x", limit=6)
    assert len(chosen) == 6 and len(skipped) == 1                                                # line 4 met, line 7 not


def test_the_selection_is_jsonl_named_by_its_content(tmp_path: Path) -> None:
    parse = partial(parse_input, labels=LABELS, workload=False)
    chosen, _ = select_lines([str(_data(tmp_path))], parse, "x", limit=2)
    text, name = selection_jsonl(chosen)
    assert [json.loads(line)["prompt"] for line in text.splitlines()] == ["q0", "q1"] and len(name) == 12
    assert selection_jsonl(select_lines([str(_data(tmp_path))], parse, "x", limit=2)[0])[1] == name
    assert selection_jsonl(select_lines([str(_data(tmp_path))], parse, "x", limit=3)[0])[1] != name
