"""The confidence report's arithmetic: rightness, AUROC with ties, thresholds, held-out sources."""

from __future__ import annotations

import pytest

from slmkit.runtime.confidence.evaluate import (GoldItem, Observation, at_threshold, auroc, is_right, parse_gold,
                                                summarize, youden_threshold)
from slmkit.runtime.spec import ConfidenceCheckSpec


def test_an_answer_is_right_when_it_contains_a_reference() -> None:
    assert is_right('{"intent": "card_arrival"}', ["card_arrival"])
    assert is_right("The intent is Card Arrival.", ["card_arrival"])
    assert is_right("no   impact", ["no impact"]) and not is_right("positive", ["negative", "no impact"])


def test_auroc_counts_ties_as_half_and_needs_both_kinds() -> None:
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    assert auroc([0.3, 0.7, 0.5], [True, True, False]) == pytest.approx(0.5)
    assert auroc([0.2, 0.4], [True, True]) is None


def test_thresholds_keep_at_or_above() -> None:
    values, right = [0.9, 0.6, 0.4, 0.1], [True, False, True, False]
    assert youden_threshold(values, right) == 0.4  # ties with 0.9 (J = 0.5): the lower keeps more
    assert at_threshold(values, right, 0.4) == {"threshold": 0.4, "kept_share": 0.75, "kept_accuracy": pytest.approx(2 / 3),
                                                "escalated_accuracy": 0.0}


def test_gold_lines_need_references() -> None:
    assert parse_gold({"prompt": "p", "context": "c", "references": ["a"]}).user == "p\n\nc"
    for bad in ({"prompt": "p"}, {"prompt": "p", "references": []}, {"prompt": "p", "references": [""]}, ["x"]):
        with pytest.raises(ValueError):
            parse_gold(bad)


def observation(source: str, value: float, right: bool) -> Observation:
    item = GoldItem(id=f"{source}:{value}", source=source, user="q", references=("a",))
    return Observation(item, "a" if right else "b", right, 10.0, {"options": value}, {"options": right}, {"options": 2.0})


def test_summary_calibrates_on_the_other_sources_and_scores_the_held_out_one() -> None:
    observations = [observation("x", 0.9, True), observation("x", 0.2, False), observation("y", 0.8, True),
                    observation("y", 0.3, False), observation("y", 0.85, False)]
    check = ConfidenceCheckSpec(tiers=["on-device"], method="options", threshold=0.5, fallback_threshold=0.5)
    summary = summarize(observations, check)
    options = summary["methods"]["options"]
    assert summary["default_method"] == "options" and options["threshold"] == 0.5 and options["threshold_source"] == "spec"
    assert options["kept_share"] == pytest.approx(0.6) and options["kept_accuracy"] == pytest.approx(2 / 3)
    held_out_x = options["by_source"]["x"]
    assert held_out_x["threshold"] == 0.8 and held_out_x["auroc"] == 1.0 and held_out_x["kept_accuracy"] == 1.0
