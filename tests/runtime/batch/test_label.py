"""`logs label` against an OpenAI-compatible labeller at the HTTP level: labels follow the task
table, retries, failures recorded, cost counted, agreement reported, a killed run resumes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from slmkit.runtime.batch.label import (
    ANSWER_TOKENS,
    LabelTally,
    RateLimiter,
    estimate,
    label_files,
    label_messages,
    labeller_tier,
    parse_label,
)
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Request
from slmkit.runtime.spec import load_spec, parse_spec
from tests.runtime.batch.labeller_mock import MockLabeller, spec_with_labeller

REQUESTS = [
    {"prompt": "Write a short story about a lighthouse.", "tier": "complex", "task_category": "creative_writing"},
    {"prompt": "What is the sentiment of: 'great phone'?", "tier": "simple", "task_category": "sentiment"},
    {"prompt": "Solve 3x + 2 = 11.", "tier": "simple", "task_category": "math_reasoning"},   # label disagrees with the table
    {"prompt": "Who painted the Mona Lisa?"},
    {"messages": [{"role": "user", "content": "Write a poem about rain"}]},
    {"prompt": "Summarize this memo.", "context": "x" * 20_000},
]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n", encoding="utf-8")
    return path


def test_labels_follow_the_task_table_and_agreement_is_reported(tmp_path: Path) -> None:
    data = _write(tmp_path / "logs.jsonl", REQUESTS)
    with MockLabeller() as mock:
        tally = label_files([str(data)], spec_with_labeller(mock.url), str(default_spec_path().parent), str(tmp_path / "out"),
                            "labeller", rate=100, engine="local")
    f = tally.figures()
    assert f["n"] == 6 and f["labelled"] == 6 and f["failed"] == 0 and f["skipped_lines"]["count"] == 1
    assert f["tier_mix"] == {"simple": 2 / 6, "medium": 1 / 6, "complex": 3 / 6}   # a short summary: simple by the table
    assert f["agreement"]["compared"] == 3 and f["agreement"]["tier_agreement"] == pytest.approx(2 / 3)
    assert f["agreement"]["confusion"]["simple"]["complex"] == 1                  # the math line labelled simple before
    assert f["agreement"]["category_agreement"] == 1.0
    assert f["input_tokens"] == 600 and f["output_tokens"] == 60
    assert f["cost_usd"] == pytest.approx((600 * 5 + 60 * 25) / 1e6)
    sent = mock.calls[0]
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["task_category"]["enum"][0] == "intent_classification"
    long_one = next(c for c in mock.calls if "characters left out" in c["messages"][-1]["content"])
    assert len(long_one["messages"][-1]["content"]) < 6_000 and "20,022 characters" in long_one["messages"][-1]["content"]


def test_throttled_and_unusable_answers_are_retried_then_recorded_as_failed(tmp_path: Path, monkeypatch) -> None:
    import slmkit.runtime.batch.label as label

    monkeypatch.setattr(label.time, "sleep", lambda s: None)      # no real backoff in the test
    data = _write(tmp_path / "logs.jsonl", REQUESTS[:3])
    with MockLabeller(fail_first=True, garble="sentiment") as mock:
        tally = label_files([str(data)], spec_with_labeller(mock.url), str(default_spec_path().parent), str(tmp_path / "out"),
                            "labeller", rate=1000, engine="local")
    f = tally.figures()
    assert f["labelled"] == 2 and f["failed"] == 1
    assert list(f["failures"]) == ["unusable answer: 'not-a-category' is not a task category of the table"]
    assert len(mock.calls) == 2 * 2 + (1 + label.RETRIES)        # a 429 then an answer; the garbled one every try
    assert f["input_tokens"] == 2 * 100 + label.RETRIES * 100    # what was paid for, failed answers included
    # a re-run labels only the failed request again
    with MockLabeller() as mock:
        again = label_files([str(data)], spec_with_labeller(mock.url), str(default_spec_path().parent), str(tmp_path / "out2"),
                            "labeller", rate=1000, engine="local")
    assert again.figures()["labelled"] == 3


def test_the_rate_limit_spaces_requests() -> None:
    limiter = RateLimiter(20)
    start = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - start >= 0.49


def test_the_cost_estimate_counts_every_request_before_anything_is_sent(tmp_path: Path) -> None:
    data = _write(tmp_path / "logs.jsonl", REQUESTS)
    spec = parse_spec(spec_with_labeller("http://127.0.0.1:9/v1"))
    tier = labeller_tier(spec, "labeller")
    plan = estimate([str(data)], tier)
    expected_in = sum(sum(max(1, (len(m["content"]) + 3) // 4) for m in label_messages(r))
                      for r in [Request(user="Write a short story about a lighthouse.")])
    assert plan.requests == 6 and plan.output_tokens == 6 * ANSWER_TOKENS and plan.input_tokens > 6 * expected_in // 2
    assert plan.usd == pytest.approx((plan.input_tokens * 5 + plan.output_tokens * 25) / 1e6)
    half = estimate([str(data)], tier, already=3)
    assert half.already_labelled == 3 and half.output_tokens == 3 * ANSWER_TOKENS


@pytest.mark.parametrize("name, message", [(None, "simulated"), ("on-device", "on-device"), ("nope", "No tier nope")])
def test_a_labeller_must_be_a_real_cloud_tier(name, message) -> None:
    with pytest.raises(SlmkitError, match=message):
        labeller_tier(load_spec(default_spec_path()), name)


def test_answers_are_parsed_strictly() -> None:
    assert parse_label('Sure: {"task_category": "roleplay"} done') == "roleplay"
    for bad in ("roleplay", '{"task_category": "chit-chat"}', '{"task_category": '):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_tally_state_round_trips_and_merges() -> None:
    a = LabelTally()
    a.add("simple", "sentiment", {"tier": "simple", "task_category": "sentiment", "input_tokens": 5, "output_tokens": 1,
                                  "cost_usd": 0.1, "error": None})
    b = LabelTally.from_state(json.loads(json.dumps(a.to_state())))
    assert b.merge(a).figures()["agreement"]["tier_agreement"] == 1.0 and b.n == 2
