"""Fitting the `trained` confidence head: it learns the direction in the data, holds each source
out honestly, and refuses data it cannot fit."""

from __future__ import annotations

import random

import pytest

from slmkit.converter.routing.confidence_head import fit_head, held_out_values, train_head
from slmkit.runtime.confidence.head import FEATURES, answer_features, head_value, option_features
from slmkit.runtime.errors import SlmkitError


def records(n: int, source: str, sign: float = 1.0, seed: int = 0) -> list[dict]:
    """Option answers whose rightness follows their probability (reversed when sign < 0)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        probability = rng.uniform(0.05, 0.95)
        right = rng.random() < (probability if sign > 0 else 1 - probability)
        rows.append({"source": source, "right": right,
                     "features": option_features(probability, rng.uniform(0, 1), rng.choice([4, 10, 77]), rng.randint(20, 300))})
    return rows


def test_the_head_learns_which_way_a_feature_points() -> None:
    head = fit_head(records(400, "a"))
    weight = dict(zip(head.features, head.weights))["option_logprob"]
    assert weight > 0.5
    assert head_value(head, option_features(0.9, 0.8, 4, 50)) > head_value(head, option_features(0.1, 0.8, 4, 50))


def test_held_out_values_never_see_their_own_source() -> None:
    # Source b's rightness runs against its probability: a head that saw b would rank b better
    # than one fitted on a and c alone. Held out, b is scored by the a+c head: AUROC well below 0.5.
    from slmkit.runtime.confidence.evaluate import auroc

    data = records(300, "a", seed=1) + records(300, "b", sign=-1, seed=2) + records(300, "c", seed=3)
    held = held_out_values(data)
    b = [(v, r["right"]) for v, r in zip(held, data) if r["source"] == "b"]
    assert all(v is not None for v, _ in b)
    assert auroc([v for v, _ in b], [r for _, r in b]) < 0.35


def test_one_source_fits_in_sample_and_says_so() -> None:
    fitted = train_head(records(200, "only"))
    assert "in-sample" in fitted.summary["threshold_source"] and 0 < fitted.threshold < 1
    several = train_head(records(200, "a", seed=4) + records(200, "b", seed=5))
    assert "leave-one-source-out" in several.summary["threshold_source"]
    assert set(several.summary["by_source"]) == {"a", "b"} and several.head.fitted["held_out_auroc"] > 0.6


def test_answers_of_one_kind_are_refused() -> None:
    rows = [{"source": "a", "right": False, "features": answer_features([-1.0], [0.5], 10)} for _ in range(5)]
    with pytest.raises(SlmkitError, match="all wrong"):
        fit_head(rows)


def test_every_feature_is_written_for_both_kinds_of_answer() -> None:
    assert set(option_features(0.5, 0.1, 3, 9)) == set(FEATURES) == set(answer_features([], [], 9))
