"""The simulator replays through the real Pipeline and turns host measurements into device numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmkit.runtime.backends.base import estimate_request_tokens
from slmkit.runtime.batch.route import RouteTally
from slmkit.runtime.data import Dataset, LabelledRequest
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.evaluation import percentile
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.simulate.devices import builtin_devices
from slmkit.runtime.simulate.hostcal import HostCalibration
from slmkit.runtime.simulate.run import Simulator, cdf_points, predict_local_tiers
from slmkit.runtime.simulate.speed import HostSpeed, ModelFootprint, predict
from slmkit.runtime.spec import ConfidenceCheckSpec, parse_spec
from tests.runtime.fakes import Scripted

HOST = HostCalibration(bandwidth_gbs=20.0, gflops=100.0, cpu="test", cores=2)
DEVICE = builtin_devices()["iphone-15-pro"]


class PrefixRouter:
    """'s:' -> simple 0.95, 'm:' -> medium 0.9, 'c:' -> complex 0.9, 'u:' -> simple but unsure."""

    method = "prefix"

    def decide(self, request: Request) -> RouteDecision:
        label, confidence = {"s": ("simple", 0.95), "m": ("medium", 0.9), "c": ("complex", 0.9),
                             "u": ("simple", 0.6)}[request.user[0]]
        return RouteDecision(label, confidence, {label: confidence}, latency_ms=10.0, method=self.method)


def simulator(on_device: Scripted, mid: Scripted, frontier: Scripted) -> Simulator:
    """The default spec with the seed's sampled self-rating (Scripted replies carry the ratings)."""
    spec = parse_spec(json.loads(default_spec_path().read_text(encoding="utf-8")))
    spec.confidence_check = ConfidenceCheckSpec(tiers=["on-device"], method="sampled_rating", threshold=7)
    pipeline = Pipeline(spec, default_spec_path().parent, {"on-device": on_device, "mid": mid, "frontier": frontier},
                        router=PrefixRouter())
    footprint = ModelFootprint("local.gguf", 10**8, 1000, 1024)
    prediction = predict(DEVICE, footprint, HOST, HostSpeed(decode_tps=40.0, prefill_tps=400.0))
    return Simulator(pipeline, DEVICE, HOST, {"on-device": prediction})


def dataset(*users_and_labels: tuple[str, str | None]) -> Dataset:
    return Dataset([LabelledRequest(Request(user), label) for user, label in users_and_labels])


def test_pipeline_run_counts_escalations_and_predicts_device_latency() -> None:
    sim = simulator(Scripted("ok", "9", "meh", "3"), Scripted("mid answer"), Scripted("deep answer"))
    data = dataset(("s: capital of France", "simple"), ("s: poem", "simple"), ("c: prove", "complex"))
    outcomes = sim.run_all(data)
    kept, escalated, frontier = outcomes
    assert (kept.final_tier, escalated.final_tier, frontier.final_tier) == ("on-device", "mid", "frontier")
    assert escalated.escalated and not kept.escalated
    prediction = sim.predictions["on-device"]
    answer = kept.steps[0]  # Scripted reports 100 tokens in, 50 out
    assert answer["device_ms"] == pytest.approx(1000 * (100 / prediction.prefill_tps + 50 / prediction.decode_tps))
    assert frontier.steps[0]["device_ms"] == pytest.approx(5.0 + DEVICE.network_rtt_ms)
    assert kept.router_ms == pytest.approx(10.0 * HOST.gflops / DEVICE.gflops)
    assert kept.latency_ms == pytest.approx(kept.router_ms + sum(s["device_ms"] for s in kept.steps))
    assert kept.cost_usd == 0 and frontier.cost_usd > escalated.cost_usd > 0

    summary = sim.summarize(outcomes, data, requests_per_day=1000)
    assert summary["tier_mix"]["routed"] == pytest.approx({"on-device": 2 / 3, "mid": 0, "frontier": 1 / 3})
    assert summary["tier_mix"]["final"] == pytest.approx({"on-device": 1 / 3, "mid": 1 / 3, "frontier": 1 / 3})
    assert summary["escalation_rate"] == pytest.approx(1 / 3) and summary["fallback_rate"] == 0
    assert summary["routing"]["accuracy"] == 1.0 and summary["kept_on_device"] == pytest.approx(1 / 3)
    cost = summary["cost"]
    assert cost["usd_per_day"] == pytest.approx(sum(o.cost_usd for o in outcomes) / 3 * 1000)
    assert cost["baseline_tier"] == "frontier" and 0 < cost["savings"] < 1
    assert cost["usd_per_month"] == pytest.approx(30 * cost["usd_per_day"])


def test_gold_answers_measure_the_kept_and_the_escalated_answers() -> None:
    sim = simulator(Scripted("Paris", "9", "a poem", "3", "Rome", "8"), Scripted("mid answer"), Scripted("deep"))
    data = Dataset([LabelledRequest(Request("s: capital of France"), "simple", references=("Paris",)),
                    LabelledRequest(Request("s: poem"), "simple", references=("sonnet",)),
                    LabelledRequest(Request("s: capital of Spain"), "simple", references=("Madrid",)),
                    LabelledRequest(Request("c: prove"), "complex")])
    outcomes = sim.run_all(data)
    check = sim.summarize(outcomes, data, requests_per_day=1000)["confidence_check"]
    assert check == {"method": "sampled_rating", "checked": 3, "kept_share": pytest.approx(2 / 3), "with_references": 3,
                     "right_overall": pytest.approx(1 / 3), "right_when_kept": 0.5, "right_when_escalated": 0.0}


def test_failed_tier_falls_back_and_is_counted() -> None:
    from slmkit.runtime.backends.base import BackendError

    sim = simulator(Scripted(), Scripted("mid saves the day"), Scripted(BackendError("HTTP 503")))
    outcomes = sim.run_all(dataset(("c: hard", None)))
    assert outcomes[0].final_tier == "mid" and outcomes[0].fell_back
    summary = sim.summarize(outcomes, dataset(("c: hard", None)), 100)
    assert summary["fallback_rate"] == 1.0 and summary["routing"] is None


def routed_tally(sim: Simulator, data: Dataset) -> RouteTally:
    """What runtime/batch's shards add up for a router-only run, counted here with the test's router."""
    tally = RouteTally.empty(sim.spec, False, sim.output_tokens)
    for item in data.items:
        tally.routing.add(item.tier, sim.pipeline.router.decide(item.request), estimate_request_tokens(item.request))
    return tally


def test_router_only_prices_each_tier_by_its_expected_answer() -> None:
    sim = simulator(Scripted(), Scripted(), Scripted())
    data = dataset(("s: a", "simple"), ("m: b", "medium"), ("u: c", "simple"), ("c: d", "complex"), ("s: e", None))
    summary = sim.summarize_routing(routed_tally(sim, data), 1000)
    assert summary["mode"] == "router-only" and summary["escalation_rate"] is None and summary["n"] == 5
    assert summary["tier_mix"]["routed"] == pytest.approx({"on-device": 0.4, "mid": 0.4, "frontier": 0.2})
    assert summary["routing"]["n"] == 4 and summary["routing"]["accuracy"] == 1.0
    mid, frontier = sim.spec.tier("mid"), sim.spec.tier("frontier")
    each = [(1 * t.price_in_per_mtok + t.simulated.output_tokens * t.price_out_per_mtok) / 1e6 for t in (mid, frontier)]
    assert summary["cost"]["usd_per_day"] == pytest.approx((2 * each[0] + each[1]) / 5 * 1000)
    assert summary["cost"]["baseline_usd_per_day"] == pytest.approx(each[1] * 1000)
    assert summary["latency_ms"]["router"]["p50"] == pytest.approx(10.0 * HOST.gflops / DEVICE.gflops)
    assert summary["latency_ms"]["end_to_end_by_final_tier"]["mid"]["n"] == 2
    assert summary["latency_cdf_ms"]["mid"] == [[pytest.approx(10.0 * HOST.gflops / DEVICE.gflops), 1.0]]
    sweep = {row["simple_min_confidence"]: row for row in summary["threshold_sweep"]}
    assert sweep[0.5]["on_device"] == 0.6 and sweep[0.8]["on_device"] == 0.4 and sweep[0.99]["on_device"] == 0
    assert sweep[0.5]["usd_per_day"] < sweep[0.8]["usd_per_day"] < sweep[0.99]["usd_per_day"]
    assert sweep[0.8]["current"] and sweep[0.8]["usd_per_day"] == pytest.approx(summary["cost"]["usd_per_day"])


def test_router_only_summary_equals_the_pipeline_summarys_routing_figures() -> None:
    """The same requests, routed one by one in the pipeline and tallied in shards: the same tier mix,
    routing figures and sweep shares (only the answers' costs differ: router-only prices expected ones)."""
    sim = simulator(Scripted(*["ok", "9"] * 10), Scripted(*["mid"] * 10), Scripted(*["deep"] * 10))
    data = dataset(*[(f"s: q{i}", "simple") for i in range(4)], ("m: b", "medium"), ("c: proof", "complex"),
                   ("u: unsure", "complex"))
    piped = sim.summarize(sim.run_all(data), data, 1000)
    routed = sim.summarize_routing(routed_tally(sim, data), 1000)
    assert routed["tier_mix"]["routed"] == pytest.approx(piped["tier_mix"]["routed"])
    assert routed["routing"] == piped["routing"]
    assert [r["on_device"] for r in routed["threshold_sweep"]] == [r["on_device"] for r in piped["threshold_sweep"]]
    assert routed["latency_ms"]["router"] == pytest.approx(piped["latency_ms"]["router"])


def test_cdf_points_are_the_empirical_cdf_in_at_most_200_steps() -> None:
    three = [1.0, 2.0, 4.0]
    assert cdf_points(lambda q: percentile(three, q)) == [[1.0, pytest.approx(1 / 3, abs=0.005)],
                                                          [2.0, pytest.approx(2 / 3, abs=0.005)], [4.0, 1.0]]
    many = [float(i) for i in range(10_000)]
    points = cdf_points(lambda q: percentile(many, q))
    assert len(points) == 200 and points[99] == [4999.0, 0.5] and points[-1] == [9999.0, 1.0]
    assert cdf_points(lambda q: None) == []


def test_local_tiers_are_sized_speed_tested_and_refused_when_too_big(tmp_path: Path) -> None:
    """The default bundle's SmolLM2 on llama.cpp: fits a phone, refused by a 0.1 GB device."""
    from slmkit.runtime.errors import SlmkitError

    pipeline = Pipeline.from_spec_file(default_spec_path())
    try:
        predictions = predict_local_tiers(pipeline, DEVICE, HOST)
        p = predictions["on-device"]
        assert p.fits and p.decode_tps > 0 and p.prefill_tps > 0 and 0 < p.efficiency <= 1
        assert 0 < p.host_cpu_share <= 1
        tiny = DEVICE.model_copy(update={"usable_ram_gb": 0.1, "label": "a tiny device"})
        with pytest.raises(SlmkitError, match="needs about 0.3\\d GB .* a tiny device gives one app about 0.1 GB"):
            predict_local_tiers(pipeline, tiny, HOST)
    finally:
        pipeline.close()


def test_a_local_tier_without_a_speed_model_is_named_not_hidden() -> None:
    sim = simulator(Scripted("ok", "9"), Scripted(), Scripted())
    assert sim.unpredicted == {}
    bare = Simulator(sim.pipeline, DEVICE, HOST, {})
    assert "no speed model for the llama.cpp backend" in bare.unpredicted["on-device"]
    outcome = bare.run(Request("s: hi"), None)
    assert outcome.steps[0]["device_ms"] == outcome.steps[0]["latency_ms"]  # host time kept, as the note says


def test_the_sweep_row_at_the_specs_threshold_is_the_headline_cost_escalations_included() -> None:
    replies = []
    for i in range(8):
        replies += [f"answer {i}", "9" if i % 2 else "2"]  # half the on-device answers escalate to mid
    sim = simulator(Scripted(*replies), Scripted(*["mid"] * 10), Scripted(*["deep"] * 10))
    data = dataset(*[(f"s: q{i}", "simple") for i in range(8)], ("c: proof", "complex"), ("u: unsure", "simple"))
    summary = sim.summarize(sim.run_all(data), data, 1000)
    assert summary["escalation_rate"] > 0
    current = [row for row in summary["threshold_sweep"] if row["current"]]
    assert len(current) == 1 and current[0]["simple_min_confidence"] == 0.8
    assert current[0]["usd_per_day"] == pytest.approx(summary["cost"]["usd_per_day"])
    cheapest = summary["threshold_sweep"][0]  # 0.0: the unsure request moves on-device too, and may escalate
    assert cheapest["on_device"] > current[0]["on_device"]
