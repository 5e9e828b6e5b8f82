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


def test_conversations_as_messages_and_several_files(tmp_path: Path) -> None:
    from slmkit.runtime.data import read_datasets

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write a poem about rain."},
                {"role": "assistant", "content": "Drops…"}, {"role": "user", "content": "shorter"}]
    first = tmp_path / "conversations.jsonl"
    first.write_text("\n".join([json.dumps({"id": "c1", "messages": messages, "tier": "complex", "source": "chat"}),
                                json.dumps({"messages": messages[:3], "tier": "simple"}),
                                json.dumps({"messages": [{"role": "user"}], "tier": "simple"})]) + "\n", encoding="utf-8")
    second = tmp_path / "more.jsonl"
    second.write_text(json.dumps({"prompt": "Hi", "tier": "simple"}) + "\n", encoding="utf-8")
    data = read_datasets([first, second])
    conversation = data.items[0].request
    assert (conversation.user, conversation.system) == ("shorter", "Be brief.")
    assert conversation.earlier_user_turns(2) == ("Write a poem about rain.",) and data.items[0].tier == "complex"
    assert [i.request.user for i in data.items] == ["shorter", "Hi"]
    assert data.skipped[0].startswith("conversations.jsonl line 2: the last message must have role 'user'")
    assert data.skipped[1].startswith("conversations.jsonl line 3: `messages` must be")
