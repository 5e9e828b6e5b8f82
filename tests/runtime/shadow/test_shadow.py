"""Shadow mode end to end: the app's tier answers, the recorder notes the router's choice (and the
on-device answer) off the request path, the report says what a cut-over would have changed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fastapi.testclient import TestClient

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.server import Shadow, create_app
from slmkit.runtime.shadow.recorder import ShadowRecorder
from slmkit.runtime.shadow.report import ShadowTally, read_records, write_shadow_report
from slmkit.runtime.spec import load_spec
from tests.runtime.fakes import Scripted


class KeywordRouter:
    """simple (0.95) for requests mentioning "sentiment", complex otherwise; can be made to block."""

    method = "keyword"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.release.set()

    def decide(self, request) -> RouteDecision:
        self.release.wait(10)
        label = "simple" if "sentiment" in request.user else "complex"
        return RouteDecision(label, 0.95, {label: 0.95}, method=self.method, latency_ms=2.0)


def _pipeline(frontier: Scripted, on_device: Scripted) -> Pipeline:
    spec = load_spec(default_spec_path())
    return Pipeline(spec, default_spec_path().parent, {"frontier": frontier, "on-device": on_device}, KeywordRouter())


def _ask(client: TestClient, text: str, stream: bool = False):
    return client.post("/v1/chat/completions", json={"model": "auto", "stream": stream,
                                                     "messages": [{"role": "user", "content": text}]})


def test_the_apps_tier_answers_and_the_routers_choice_is_recorded(tmp_path: Path) -> None:
    frontier = Scripted(*[f"frontier answer {i}" for i in range(4)])
    on_device = Scripted("on-device answer")
    pipeline = _pipeline(frontier, on_device)
    recorder = ShadowRecorder(pipeline, tmp_path / "shadow", answer_on_device=True)
    with TestClient(create_app(pipeline, shadow=Shadow("frontier", recorder))) as client:
        first = _ask(client, "What is the sentiment of 'great phone'?")
        second = _ask(client, "Write a novel", stream=True)
        third = client.post("/v1/chat/completions", json={"model": "mid", "messages": [{"role": "user", "content": "hi"}]})
    recorder.close()
    assert first.json()["choices"][0]["message"]["content"] == "frontier answer 0"
    assert "frontier answer 1" in second.text.replace('" "', "") or "frontier" in second.text
    assert second.text.rstrip().endswith("data: [DONE]") and third.status_code == 200
    assert len(on_device.calls) == 1            # only the request the router would keep on-device
    records = [json.loads(line) for f in sorted((tmp_path / "shadow").glob("shadow-*.jsonl")) for line in f.read_text().splitlines()]
    assert [r["routed_tier"] for r in records] == ["on-device", "frontier", "frontier"]
    assert records[0]["served"]["tier"] == "frontier" and records[0]["on_device"]["text"] == "on-device answer"
    assert records[2]["served"]["tier"] == "mid"   # a client naming a tier keeps it
    tally = ShadowTally(load_spec(default_spec_path()))
    assert read_records(tmp_path / "shadow", tally) == []
    figures = tally.figures()
    assert figures["n"] == 3 and figures["would_stay_on_device"] == pytest.approx(1 / 3)
    frontier_cost = (100 * 5 + 50 * 25) / 1e6
    mid = records[2]["served"]
    assert figures["cost"]["served_usd"] == pytest.approx(2 * frontier_cost + mid["cost_usd"])
    # the on-device request costs nothing routed; the mid one would have gone to frontier, at frontier prices
    assert figures["cost"]["routed_usd"] == pytest.approx(frontier_cost + (mid["input_tokens"] * 5 + mid["output_tokens"] * 25) / 1e6)
    assert [d["served_tier"] for d in figures["disagreements"]] == ["frontier", "mid"]
    assert figures["disagreements"][0]["on_device_answer"] == "on-device answer"
    json_path, html_path = write_shadow_report(figures, tmp_path / "report")
    html = html_path.read_text()
    assert "would have stayed on-device" in html and "<svg" in html and "on-device answer" in html


def test_recording_never_holds_up_an_answer(tmp_path: Path) -> None:
    """A router stuck for seconds: answers still come back at once; the backlog beyond the queue is counted."""
    pipeline = _pipeline(Scripted(*[f"a{i}" for i in range(6)]), Scripted())
    pipeline.router.release.clear()
    recorder = ShadowRecorder(pipeline, tmp_path / "shadow", queue_size=2)
    with TestClient(create_app(pipeline, shadow=Shadow("frontier", recorder))) as client:
        answers = [_ask(client, f"question {i}").status_code for i in range(6)]
    assert answers == [200] * 6
    pipeline.router.release.set()
    recorder.close()
    records = [json.loads(line) for line in next((tmp_path / "shadow").glob("shadow-*.jsonl")).read_text().splitlines()]
    tally = ShadowTally(load_spec(default_spec_path()))
    for record in records:
        tally.add(record)
    assert tally.n + tally.figures()["unrecorded_requests"] == 6 and tally.figures()["unrecorded_requests"] >= 3


def test_broken_records_are_named_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "shadow-2026-12-06.jsonl"
    log.write_text('{"version": 1, "served": {}}\nnot json\n{"version": 2}\n[1]\n', encoding="utf-8")
    tally = ShadowTally(load_spec(default_spec_path()))
    skipped = read_records(log, tally)
    assert tally.n == 0 and len(skipped) == 4
    assert skipped[0].startswith(f"{log.name} line 1: field ") and "field version" in skipped[2]


def test_a_line_that_is_not_utf8_is_skipped_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "shadow-2026-12-07.jsonl"
    log.write_bytes(b"\xff\xfe\x00garbage\n" + json.dumps(_good_record()).encode() + b"\n")
    tally = ShadowTally(load_spec(default_spec_path()))
    skipped = read_records(log, tally)
    assert tally.n == 1 and len(skipped) == 1 and "line 1" in skipped[0] and "utf-8" in skipped[0]


def _good_record() -> dict:
    return {"version": 1, "time": "2026-12-06T10:00:00+00:00", "id": "r1",
            "messages": [{"role": "user", "content": "Sentiment of: fine"}],
            "served": {"tier": "frontier", "ok": True, "input_tokens": 12, "output_tokens": 3,
                       "cost_usd": 0.0001, "latency_ms": 400.0, "text": "positive"},
            "router": {"label": "simple", "confidence": 0.9, "latency_ms": 2.0},
            "routed_tier": "on-device", "on_device": None, "unrecorded_before": 0}


@pytest.mark.parametrize("path, value", [
    (("served", "cost_usd"), "0.1"), (("served", "cost_usd"), float("nan")), (("served", "input_tokens"), -1),
    (("router", "latency_ms"), None), (("messages",), "hello"), (("routed_tier",), "nowhere"),
    (("served", "tier"), 3), (("unrecorded_before",), 1.5),
])
def test_a_bad_field_counts_nothing(path: tuple[str, ...], value: object) -> None:
    """Validated before counting: a wrong field never leaves the tally half-updated."""
    tally = ShadowTally(load_spec(default_spec_path()))
    tally.add(_good_record())
    before = tally.figures()
    record = _good_record()
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match="field"):
        tally.add(record)
    assert tally.figures() == before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
                    max_leaves=30))
def test_any_json_line_is_counted_or_refused_with_value_error(data: object) -> None:
    tally = ShadowTally(load_spec(default_spec_path()))
    try:
        tally.add(data)
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["served", "router", "on_device", "messages", "id", "time", "routed_tier"]),
       st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
def test_any_field_swapped_is_counted_or_refused(field: str, value: object) -> None:
    tally = ShadowTally(load_spec(default_spec_path()))
    record = _good_record() | {field: value}
    try:
        tally.add(record)
    except ValueError:
        assert tally.n == 0
