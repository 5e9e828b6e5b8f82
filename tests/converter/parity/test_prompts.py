"""Parity prompt files: JSONL lines validated by one schema, plain lines kept as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmkit.converter.parity.prompts import builtin_prompts, load_prompts
from slmkit.runtime.errors import SlmkitError


def test_text_prompt_messages_and_plain_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([json.dumps({"id": 7, "text": "Hello"}), json.dumps({"prompt": "Hi", "kind": "x"}),
                               json.dumps({"messages": [{"role": "user", "content": "Yo", "name": "n"}]}),
                               "plain line with \\n an escape"]) + "\n")
    prompts = load_prompts(path)
    assert [p.id for p in prompts] == ["7", "p.jsonl:2", "p.jsonl:3", "p.jsonl:4"]
    assert prompts[1].text == "Hi" and prompts[2].messages == [{"role": "user", "content": "Yo"}]
    assert prompts[3].text == "plain line with \n an escape"
    assert len(builtin_prompts()) >= 9


@pytest.mark.parametrize("line, message", [
    ({"messages": "hello"}, "field messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "field messages.0.role"),
    ({"text": "a", "prompt": "b"}, "exactly one"),
    ({"text": ""}, "field text"),
    ({"id": 1}, "exactly one"),
])
def test_a_bad_json_line_names_its_line_and_field(tmp_path: Path, line: dict, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(SlmkitError, match="p.jsonl line 2 is invalid") as caught:
        load_prompts(path)
    assert message in str(caught.value)


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["id", "text", "prompt", "messages", "role", "content", "x"]), inner,
                               max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["id", "text", "prompt", "messages", "kind"]), json_values, max_size=4))
def test_any_json_line_loads_or_is_refused_cleanly(tmp_path: Path, line: dict) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(line) + "\n")
    try:
        load_prompts(path)
    except SlmkitError:
        pass
