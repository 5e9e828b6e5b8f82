"""Router figures on a hand-checked example."""

from __future__ import annotations

import json
import random

import pytest

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.evaluation import RoutingTally, by_group, evaluate
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import load_spec


def test_figures_on_a_small_known_case() -> None:
    spec = load_spec(default_spec_path())
    truth = ["simple", "simple", "simple", "medium", "complex", "complex"]
    decisions = [RouteDecision("simple", 0.95, latency_ms=1), RouteDecision("simple", 0.7, latency_ms=2),
                 RouteDecision(None, 0.0, latency_ms=3), RouteDecision("medium", 0.9, latency_ms=4),
                 RouteDecision("simple", 0.85, latency_ms=5), RouteDecision("complex", 0.99, latency_ms=6)]
    f = evaluate(truth, decisions, spec, [100] * 6)
    assert f["accuracy"] == pytest.approx(4 / 6) and f["unparsed"] == pytest.approx(1 / 6)
    assert f["confusion"]["simple"] == {"simple": 2, "medium": 0, "complex": 0, "unparsed": 1}
    assert f["confusion"]["complex"] == {"simple": 1, "medium": 0, "complex": 1, "unparsed": 0}
    assert f["simple_kept_on_device"] == pytest.approx(1 / 3)      # only the 0.95 one clears 0.8
    assert f["complex_on_device"] == pytest.approx(1 / 2)          # the 0.85 "simple" complex request
    assert f["tier_mix"] == {"on-device": pytest.approx(2 / 6), "mid": pytest.approx(3 / 6), "frontier": pytest.approx(1 / 6)}
    assert f["latency_ms"] == {"p50": 3, "p95": 6}
    sweep = {row["simple_min_confidence"]: row for row in f["threshold_sweep"]}
    assert sweep[0.5]["simple_kept_on_device"] == pytest.approx(2 / 3) and sweep[0.9]["complex_on_device"] == 0
    # cost: on-device free, mid $1/$5, frontier $5/$25 per MTok, 100 in + each tier's simulated answer
    # length out (mid 200, frontier 300 tokens: TierSpec.expected_output_tokens)
    mid, frontier = 100 * 1 + 200 * 5, 100 * 5 + 300 * 25
    assert f["cost_share"] == pytest.approx((3 * mid + frontier) / (6 * frontier))


def test_macro_f1_averages_every_label_a_never_predicted_one_at_zero() -> None:
    spec = load_spec(default_spec_path())
    perfect = evaluate(["simple", "medium", "complex"], [RouteDecision(x, 0.9) for x in ("simple", "medium", "complex")], spec)
    assert perfect["macro_f1"] == 1.0
    f = evaluate(["simple", "simple", "medium"], [RouteDecision(x, 0.9) for x in ("simple", "medium", "medium")], spec)
    assert f["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def test_tallies_merged_from_shards_equal_one_tally_and_stay_small() -> None:
    spec = load_spec(default_spec_path())
    rng = random.Random(7)
    labels = ["simple", "medium", "complex"]
    rows = [(rng.choice([*labels, None]), RouteDecision(rng.choice([*labels, None]), rng.random(),
                                                         latency_ms=rng.uniform(0.5, 20)), rng.randint(1, 4000))
            for _ in range(20_000)]
    whole, shards = RoutingTally(spec), [RoutingTally(spec) for _ in range(3)]
    for index, row in enumerate(rows):
        whole.add(*row)
        shards[index % 3].add(*row)
    merged = shards[0].merge(shards[1]).merge(shards[2]).figures()
    expected = whole.figures()
    assert merged["confusion"] == expected["confusion"] and merged["n"] == 20_000
    # costs are priced from integer counts: exactly equal however the requests were split
    assert merged["cost_share"] == expected["cost_share"] and merged["usd_per_request"] == expected["usd_per_request"]
    assert merged["threshold_sweep"] == expected["threshold_sweep"]
    assert merged["latency_ms"] == expected["latency_ms"]
    for tier in whole.tiers:
        assert shards[0].latency_percentile(95, tier) == whole.latency_percentile(95, tier)
    # bounded by the latency range per tier, not the request count
    assert sum(len(bins) for bins in whole.latency_bins.values()) <= len(whole.tiers) * 20 / 0.01
    labelled = [(t, d) for t, d, _ in rows if t is not None]
    assert whole.figures()["accuracy"] == pytest.approx(sum(t == d.label for t, d in labelled) / len(labelled))


def test_figures_per_group() -> None:
    spec = load_spec(default_spec_path())
    truth = ["simple", "complex", "simple", "medium"]
    decisions = [RouteDecision("simple", 0.95), RouteDecision("simple", 0.9), RouteDecision("medium", 0.9),
                 RouteDecision("medium", 0.9)]
    groups = by_group(truth, decisions, spec, ["b", "b", "a", "a"])
    assert list(groups) == ["a", "b"]
    assert groups["a"]["n"] == 2 and groups["a"]["accuracy"] == 0.5 and groups["a"]["complex_on_device"] is None
    assert groups["b"]["simple_kept_on_device"] == 1.0 and groups["b"]["complex_on_device"] == 1.0
    assert groups["b"]["confusion"]["complex"]["simple"] == 1


def test_latency_per_tier_and_a_tally_of_another_format_or_spec_is_refused() -> None:
    spec = load_spec(default_spec_path())
    tally = RoutingTally(spec)
    tally.add("simple", RouteDecision("simple", 0.99, latency_ms=1.0))     # on-device
    tally.add("complex", RouteDecision("complex", 0.99, latency_ms=9.0))   # frontier
    tally.add(None, RouteDecision(None, 0.0, latency_ms=5.0))              # unparsed: mid
    assert [tally.latency_percentile(50, t) for t in ("on-device", "mid", "frontier")] == [1.0, 5.0, 9.0]
    assert tally.latency_percentile(50) == 5.0 and tally.latency_percentile(100) == 9.0
    assert RoutingTally(spec).latency_percentile(50, "mid") is None
    state = tally.to_state()
    assert RoutingTally.from_state(spec, json.loads(json.dumps(state))).figures() == tally.figures()
    with pytest.raises(ValueError, match="another slmkit version"):
        RoutingTally.from_state(spec, {**state, "format": 1})
    other = spec.model_copy(update={"tiers": spec.tiers[:2]}, deep=True)
    with pytest.raises(ValueError, match="another spec"):
        RoutingTally.from_state(other, state)
