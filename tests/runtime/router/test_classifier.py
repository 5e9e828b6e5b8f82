"""The classifier router and its head file: round trip, integrity, and the shipped head's sense."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Request
from slmkit.runtime.router.classifier import ClassifierRouter
from slmkit.runtime.router.head import LinearHead, load_head
from slmkit.runtime.spec import load_spec


def small_head() -> LinearHead:
    rng = np.random.default_rng(0)
    return LinearHead("hashed-v1", ["simple", "medium", "complex"], rng.normal(size=(20, 3)).astype(np.float16),
                      np.array([0.1, -0.2, 0.3]), buckets=16, dense=("a", "b", "c", "d"), info={"examples": 3})


def test_head_round_trip(tmp_path: Path) -> None:
    head = small_head()
    head.save(tmp_path / "head.json")
    loaded = load_head(tmp_path / "head.json")
    np.testing.assert_array_equal(loaded.weights, head.weights)
    np.testing.assert_allclose(loaded.logits({3: 0.5, 7: 0.5}, [1, 0, 0, 2]), head.logits({3: 0.5, 7: 0.5}, [1, 0, 0, 2]))
    expected = head.bias + 0.5 * head.weights[3].astype(float) + 0.5 * head.weights[7] + head.weights[16] + 2 * head.weights[19]
    np.testing.assert_allclose(head.logits({3: 0.5, 7: 0.5}, [1, 0, 0, 2]), expected, rtol=1e-6)
    assert (tmp_path / "head.f16").stat().st_size == 20 * 3 * 2


def test_tampered_or_missing_weights_are_refused(tmp_path: Path) -> None:
    small_head().save(tmp_path / "head.json")
    blob = bytearray((tmp_path / "head.f16").read_bytes())
    blob[0] ^= 0xFF
    (tmp_path / "head.f16").write_bytes(bytes(blob))
    with pytest.raises(SlmkitError, match="does not match the sha256"):
        load_head(tmp_path / "head.json")
    (tmp_path / "head.f16").unlink()
    with pytest.raises(SlmkitError, match="is missing"):
        load_head(tmp_path / "head.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}), encoding="utf-8")
    with pytest.raises(SlmkitError, match="not a router head"):
        load_head(tmp_path / "other.json")


@pytest.fixture(scope="module")
def router() -> ClassifierRouter:
    return ClassifierRouter(load_spec(default_spec_path()).router, default_spec_path().parent)


@pytest.mark.parametrize("user, label", [
    ("Classify the sentiment of this review as positive or negative: \"The battery died after two days.\"", "simple"),
    ("Extract every person and organization named in: \"Tim Cook met Sundar Pichai at Google in May.\"", "simple"),
    ("Janet has 3 times as many apples as Tom. Together they have 48. Tom gives away 5. How many does Tom have left? "
     "Think step by step.", "complex"),
    ("I want you to act as a travel guide. I will tell you my location and you will suggest places to visit.", "complex"),
    ("Rewrite this sentence so it is easier to read: The committee, having deliberated extensively, resolved to defer.", "medium"),
])
def test_shipped_head_routes_clear_cases(router: ClassifierRouter, user: str, label: str) -> None:
    decision = router.decide(Request(user))
    assert decision.label == label, decision.probabilities
    assert decision.method == "classifier" and decision.latency_ms < 1000


def test_shipped_head_records_its_training(router: ClassifierRouter) -> None:
    info = router.head.info
    assert info["examples"] == 5604 and [d["file"] for d in info["data"]] == ["train.jsonl.gz", "authored.jsonl.gz"]
    assert info["target"] == "category" and router.head.label_groups["follow_up"] == "simple"
    assert info["cv"]["leave_one_source_out"]["accuracy"] >= 0.6  # sources it never saw (docs/routing.md)
    assert info["encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and router.encoder is not None
    assert info["cv"]["stratified"]["accuracy"] >= 0.9 and info["cv"]["stratified"]["complex_on_device"] <= 0.02
    assert info["cv"]["stratified"]["simple_kept_on_device"] >= 0.85


def test_encoder_head_without_an_encoder_in_the_spec_is_refused() -> None:
    spec = load_spec(default_spec_path()).router.model_copy(update={"encoder": None})
    with pytest.raises(SlmkitError, match="trained with a sentence encoder"):
        ClassifierRouter(spec, default_spec_path().parent)


def test_head_for_other_labels_is_refused(tmp_path: Path) -> None:
    head = small_head()
    head.buckets, head.dense = 16, ("log_user_chars", "log_user_lines", "log_system_chars", "digit_share")
    head.labels = ["easy", "normal", "hard"]
    head.save(tmp_path / "router-head.json")
    spec = load_spec(default_spec_path()).router
    with pytest.raises(SlmkitError, match="predicts"):
        ClassifierRouter(spec, tmp_path)


def test_a_category_head_routes_by_the_summed_probability_of_its_tier(tmp_path) -> None:
    """Two 'simple' categories at 0.3 each beat one 'complex' category at 0.4."""
    import math

    from slmkit.runtime.router.decision import decision_from_grouped_logits

    classes = ["classify", "extract", "prove"]
    groups = {"classify": "simple", "extract": "simple", "prove": "complex"}
    logits = [math.log(0.3), math.log(0.3), math.log(0.4)]
    decision = decision_from_grouped_logits(["simple", "medium", "complex"], classes, logits, groups)
    assert decision.label == "simple" and abs(decision.confidence - 0.6) < 1e-12
    assert decision.probabilities["medium"] == 0.0 and abs(decision.probabilities["complex"] - 0.4) < 1e-12
    assert decision.raw.startswith("prove 0.4")
