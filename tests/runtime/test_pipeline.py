"""The pipeline's promises: route, fall through, escalate, never drop, trace everything, leak no key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from slmkit.runtime.backends.base import BackendError
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.request import Request
from slmkit.runtime.spec import ConfidenceCheckSpec, parse_spec
from tests.runtime.fakes import FixedRouter, Scripted, ScriptedLogits


def pipeline(label: str | None, confidence: float, check: dict | None = None, **backends: Scripted) -> Pipeline:
    """The default spec with the seed's sampled self-rating on the on-device tier, or `check`."""
    spec = parse_spec(json.loads(default_spec_path().read_text(encoding="utf-8")))
    spec.confidence_check = ConfidenceCheckSpec(**(check or {"tiers": ["on-device"], "method": "sampled_rating",
                                                             "threshold": 7}))
    names = {"on_device": "on-device", "mid": "mid", "frontier": "frontier"}
    return Pipeline(spec, default_spec_path().parent, {names[k]: v for k, v in backends.items()},
                    router=FixedRouter(label, confidence))


def test_confident_simple_stays_on_device_when_the_rating_is_high() -> None:
    local = Scripted("Paris.", "9")
    response = pipeline("simple", 0.95, on_device=local).handle(Request("Capital of France?"))
    assert (response.text, response.tier, response.ok) == ("Paris.", "on-device", True)
    trace = response.trace.to_dict()
    assert trace["policy"]["tier"] == "on-device" and trace["confidence"][0]["value"] == 9
    assert trace["confidence"][0]["method"] == "sampled_rating"
    assert [s["purpose"] for s in trace["steps"]] == ["answer", "rating"]
    assert "Paris." in local.calls[1][0]["content"] and "Capital of France?" in local.calls[1][0]["content"]
    assert trace["cost_usd"] == 0.0 and not trace["escalations"]


@pytest.mark.parametrize("rating_text", ["4", "no idea"])
def test_low_or_unparsable_rating_escalates_to_the_next_tier(rating_text: str) -> None:
    mid = Scripted("Better answer.")
    response = pipeline("simple", 0.95, on_device=Scripted("meh", rating_text), mid=mid).handle(Request("q"))
    assert (response.text, response.tier) == ("Better answer.", "mid")
    trace = response.trace.to_dict()
    assert trace["escalations"] == [{"from": "on-device", "to": "mid", "method": "sampled_rating",
                                     "confidence": 4.0 if rating_text == "4" else 5.0}]
    assert trace["confidence"][0]["parsed"] is (rating_text == "4")
    assert trace["cost_usd"] == pytest.approx((100 * 1.0 + 50 * 5.0) / 1e6)


def test_policy_sends_unsure_and_unparsed_requests_to_the_safe_tier() -> None:
    for label, confidence in (("simple", 0.5), (None, 0.0), ("medium", 0.99)):
        mid = Scripted("mid answer")
        response = pipeline(label, confidence, mid=mid).handle(Request("q"))
        assert response.tier == "mid" and len(mid.calls) == 1


def test_failing_tiers_fall_through_with_reasons_in_the_trace() -> None:
    mid = Scripted("mid saved it")
    response = pipeline("complex", 0.9, frontier=Scripted(BackendError("timeout after 60 s")), mid=mid).handle(Request("hard"))
    assert (response.text, response.tier) == ("mid saved it", "mid")
    assert response.trace.fallbacks == [{"from": "frontier", "to": "mid", "reason": "timeout after 60 s"}]
    assert [s.ok for s in response.trace.steps] == [False, True]


def test_a_tier_s_own_fallback_list_is_followed() -> None:
    spec = parse_spec(json.loads(default_spec_path().read_text(encoding="utf-8")))
    spec.tiers[1].fallback = ["on-device"]
    local = Scripted("local answer", "8")
    response = Pipeline(spec, default_spec_path().parent, {"mid": Scripted(BackendError("HTTP 503 from x")), "on-device": local},
                        router=FixedRouter("medium", 0.9)).handle(Request("q"))
    assert response.tier == "on-device" and response.trace.fallbacks[0]["to"] == "on-device"


def test_a_tier_whose_model_cannot_load_falls_through(tmp_path: Path) -> None:
    spec = parse_spec(json.loads(default_spec_path().read_text(encoding="utf-8")))
    spec.tiers[0].model = "missing.gguf"
    mid = Scripted("mid answer")
    response = Pipeline(spec, tmp_path, {"mid": mid}, router=FixedRouter("simple", 0.99)).handle(Request("q"))
    assert response.tier == "mid"
    assert response.trace.fallbacks[0]["reason"].startswith("cannot load: Model missing.gguf not found")


def test_every_tier_failing_returns_an_error_response_not_an_exception() -> None:
    boom = BackendError("connection failed: ConnectError")
    response = pipeline("simple", 0.99, on_device=Scripted(boom), mid=Scripted(boom), frontier=Scripted(boom)).handle(Request("x"))
    assert response.tier is None and response.text == ""
    assert [(f["from"], f["to"]) for f in response.trace.fallbacks] == [("on-device", "mid"), ("mid", "frontier"), ("frontier", None)]
    assert response.error.count("connection failed") == 3


def test_a_failed_rating_counts_as_unparsable() -> None:
    response = pipeline("simple", 0.99, on_device=Scripted("answer", BackendError("timeout after 1 s")),
                        mid=Scripted("mid")).handle(Request("x"))
    assert response.tier == "mid" and response.trace.confidence[0]["parsed"] is False


def test_stream_yields_pieces_then_the_response_when_no_check_applies() -> None:
    mid = Scripted("one two three")
    events = list(pipeline("medium", 0.9, mid=mid).stream(Request("q")))
    *pieces, response = events
    assert "".join(pieces).split() == ["one", "two", "three"] and response.tier == "mid"
    assert response.trace.steps[0].output_tokens == 50


def test_stream_falls_back_when_the_tier_fails() -> None:
    spec_pipeline = pipeline("medium", 0.9, mid=Scripted(BackendError("HTTP 500 from x")), frontier=Scripted("ok"))
    *_, response = list(spec_pipeline.stream(Request("q")))
    assert response.tier == "frontier" and response.trace.fallbacks[0]["reason"] == "HTTP 500 from x"


def test_async_handle() -> None:
    import asyncio

    response = asyncio.run(pipeline("medium", 0.9, mid=Scripted("async ok")).ahandle(Request("q")))
    assert response.text == "async ok"


def test_default_bundle_routes_offline_with_simulated_cloud_tiers() -> None:
    """The shipped spec + head: a complex request goes to the simulated frontier, marked simulated."""
    pipe = Pipeline.from_spec_file(default_spec_path())
    response = pipe.handle(Request("Write a 2,000-word short story about a lighthouse keeper who finds a map, "
                                   "with three plot twists and an unreliable narrator."))
    trace = response.trace.to_dict()
    assert trace["router"]["method"] == "classifier" and trace["router"]["label"] == "complex"
    assert response.tier == "frontier" and trace["steps"][0]["simulated"] and "simulated" in response.text
    assert trace["cost_usd"] > 0
    pipe.close()


def test_routing_json_paths_are_relative_to_the_spec(tmp_path: Path) -> None:
    data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    (tmp_path / "routing.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(Exception, match="router-head.json"):
        Pipeline.from_spec_file(tmp_path / "routing.json")


TOKEN_CHECK = {"tiers": ["on-device"], "method": "token_logprob", "feature": "mean", "threshold": 0.5}
OPTIONS_CHECK = {"tiers": ["on-device"], "method": "options", "threshold": 0.6, "fallback": "token_logprob",
                 "fallback_threshold": 0.5}


@pytest.mark.parametrize(("probability", "tier"), [(0.9, "on-device"), (0.2, "mid")])
def test_token_logprob_keeps_or_escalates_without_a_second_generation(probability: float, tier: str) -> None:
    import math

    local = ScriptedLogits("Paris.", logprobs=[math.log(probability)] * 3)
    response = pipeline("simple", 0.95, check=TOKEN_CHECK, on_device=local, mid=Scripted("mid")).handle(Request("q"))
    assert response.tier == tier and len(local.calls) == 1
    check = response.trace.confidence[0]
    assert check["method"] == "token_logprob" and check["value"] == pytest.approx(probability)
    assert check["escalate"] is (tier == "mid") and [s.purpose for s in response.trace.steps][0] == "answer"


def test_options_answer_with_the_best_option_and_its_probability() -> None:
    local = ScriptedLogits(vocab=["positive", "negative", "x"], table={(): {"positive": 0.2, "negative": 0.6}})
    request = Request("Classify the tone (positive / negative) of: great!")
    response = pipeline("simple", 0.95, check=OPTIONS_CHECK, on_device=local, mid=Scripted("mid")).handle(request)
    assert (response.text, response.tier) == ("negative", "on-device")
    assert response.trace.confidence[0]["value"] == pytest.approx(0.75) and response.trace.steps[0].purpose == "answer"


def test_options_without_a_closed_set_falls_back_to_its_fallback_method() -> None:
    import math

    local = ScriptedLogits("Paris.", logprobs=[math.log(0.3)])
    response = pipeline("simple", 0.95, check=OPTIONS_CHECK, on_device=local, mid=Scripted("mid")).handle(Request("Capital?"))
    check = response.trace.confidence[0]
    assert (check["method"], check["threshold"], response.tier) == ("token_logprob", 0.5, "mid")


def test_a_failing_check_escalates_and_says_why() -> None:
    local = Scripted("Paris.")  # no logits: token_logprob cannot read the answer's probabilities
    response = pipeline("simple", 0.95, check=TOKEN_CHECK, on_device=local, mid=Scripted("mid")).handle(Request("q"))
    assert response.tier == "mid" and response.trace.confidence[0]["error"]


# A head that reads only the option walk's probability and the free answer's mean token log-probability
# (each 0 for the other kind of answer): z = 4 (option_logprob + 0.5) + 4 token_mean.
TRAINED_CHECK = {"tiers": ["on-device"], "method": "trained", "threshold": 0.5,
                 "head": {"features": ["options", "option_logprob", "token_mean"], "weights": [0.0, 4.0, 4.0],
                          "center": [0.0, -0.5, 0.0], "scale": [1.0, 1.0, 1.0], "bias": 0.0}}


@pytest.mark.parametrize(("table", "tier"), [({"positive": 0.1, "negative": 0.8}, "on-device"),
                                             ({"positive": 0.3, "negative": 0.35}, "mid")])
def test_trained_scores_the_option_answer_with_its_head(table: dict, tier: str) -> None:
    local = ScriptedLogits(vocab=["positive", "negative", "x"], table={(): table})
    request = Request("Classify the tone (positive / negative) of: great!")
    response = pipeline("simple", 0.95, check=TRAINED_CHECK, on_device=local, mid=Scripted("mid")).handle(request)
    check = response.trace.confidence[0]
    share = max(table.values()) / sum(table.values())
    assert check["method"] == "trained" and check["features"]["option_logprob"] == pytest.approx(math.log(share), abs=1e-4)
    assert check["value"] == pytest.approx(1 / (1 + math.exp(-4 * (math.log(share) + 0.5))))
    assert response.tier == tier and response.text == ("negative" if tier == "on-device" else "mid")


@pytest.mark.parametrize(("probability", "tier"), [(0.9, "on-device"), (0.3, "mid")])
def test_trained_scores_a_free_answer_from_its_token_logprobs(probability: float, tier: str) -> None:
    local = ScriptedLogits("Paris.", logprobs=[math.log(probability)] * 2)
    response = pipeline("simple", 0.95, check=TRAINED_CHECK, on_device=local, mid=Scripted("mid")).handle(Request("Capital?"))
    check = response.trace.confidence[0]
    assert (check["method"], check["threshold"], response.tier) == ("trained", 0.5, tier) and len(local.calls) == 1
    assert check["features"]["token_mean"] == pytest.approx(math.log(probability), abs=1e-4)


def test_trained_without_a_head_is_a_spec_error() -> None:
    with pytest.raises(ValueError, match="needs `head`"):
        ConfidenceCheckSpec(tiers=["on-device"], method="trained", threshold=0.5)
