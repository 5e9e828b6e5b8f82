"""Cross-validation splits of the classifier router: each one holds out what it says."""

from __future__ import annotations

import pytest

from slmkit.converter.routing.train import ABSENT_LABEL_LOGIT, cross_validate, design_matrix, fold_count
from slmkit.runtime.data import Dataset, LabelledRequest
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Request
from slmkit.runtime.spec import load_spec

TIERS = ("simple", "medium", "complex")


def _dataset(per_source: int = 12) -> Dataset:
    """Six sources; each one's requests share a marker word and a tier, two sources per tier.
    Markers never cross sources, so only the shared topic words ("ticket", "essay", "proof") generalize."""
    topics = {"simple": "label this ticket", "medium": "rewrite this essay", "complex": "write a proof"}
    items = []
    for number, (source, tier) in enumerate(zip("abcdef", TIERS * 2)):
        for i in range(per_source):
            text = f"{topics[tier]} marker{source}{source} item {i} " + " ".join(f"filler{number}{j}" for j in range(i % 4))
            items.append(LabelledRequest(Request(user=text), tier, source=f"src-{source}", template=f"t{i % 3}"))
    return Dataset(items)


@pytest.fixture(scope="module")
def spec():
    return load_spec(default_spec_path())


def test_leave_one_source_out_never_trains_on_the_source_it_scores(spec) -> None:
    dataset = _dataset()
    X = design_matrix(dataset, spec)
    loso = cross_validate(X, dataset, spec, "source", C=10.0)
    assert loso["split"] == "leave_one_source_out" and set(loso["by_group"]) == {f"src-{s}" for s in "abcdef"}
    assert sum(group["n"] for group in loso["by_group"].values()) == len(dataset.items)
    # The topic words are shared by two sources per tier, so a held-out source is still routed right.
    assert loso["accuracy"] == 1.0
    stratified = cross_validate(X, dataset, spec, "random", C=10.0, folds=3)
    assert stratified["accuracy"] == 1.0 and "by_group" not in stratified


def test_a_tier_only_one_source_has_cannot_be_learned_without_it(spec) -> None:
    """Drop source d: 'simple' then lives only in source a. Held out, a's requests have no simple
    request to learn from (its logit is ABSENT_LABEL_LOGIT), which a random split would hide."""
    dataset = Dataset([item for item in _dataset().items if item.source != "src-d"])
    X = design_matrix(dataset, spec)
    loso = cross_validate(X, dataset, spec, "source", C=10.0)
    assert loso["by_group"]["src-a"]["accuracy"] == 0.0
    assert loso["by_group"]["src-a"]["simple_kept_on_device"] == 0.0
    assert cross_validate(X, dataset, spec, "random", C=10.0, folds=3)["accuracy"] == 1.0
    assert ABSENT_LABEL_LOGIT < -10


def test_a_fold_left_with_one_tier_predicts_that_tier(spec) -> None:
    """Two sources, one simple and one complex: holding either out leaves a single class to train on,
    which predicts that class (accuracy 0), never a scikit-learn traceback."""
    dataset = Dataset([item for item in _dataset().items if item.source in ("src-a", "src-c")])
    loso = cross_validate(design_matrix(dataset, spec), dataset, spec, "source", C=10.0)
    assert loso["accuracy"] == 0.0 and loso["by_group"]["src-a"]["simple_kept_on_device"] == 0.0


def test_training_on_a_single_class_is_refused_before_the_features(spec) -> None:
    from slmkit.converter.routing.train import train

    dataset = Dataset([item for item in _dataset().items if item.source == "src-a"])
    with pytest.raises(SlmkitError, match="at least two classes; every request here is 'simple'"):
        train(dataset, spec)


def test_too_few_sources_or_an_unknown_split_is_refused(spec) -> None:
    dataset = Dataset([LabelledRequest(Request(user=f"request {i}"), TIERS[i % 3], source="one") for i in range(30)])
    with pytest.raises(SlmkitError, match="at least 2 distinct sources; the data has 1"):
        fold_count(dataset, "source", 5)
    with pytest.raises(SlmkitError, match="No cross-validation split named 'sources'"):
        fold_count(dataset, "sources", 5)
    assert fold_count(_dataset(), "source", 5) == 6 and fold_count(dataset, "random", 5) == 5


def test_category_target_sums_category_probabilities_into_tiers(spec) -> None:
    from slmkit.converter.routing.train import head_target, train

    items = []
    for item in _dataset().items:  # two categories per tier: one per source of that tier
        items.append(LabelledRequest(item.request, item.tier, item.source, item.template, category=f"{item.tier}-{item.source}"))
    dataset = Dataset(items)
    target = head_target(dataset, list(TIERS), "category")
    assert len(target.classes) == 6 and target.groups["simple-src-a"] == "simple"
    result = train(dataset, spec, folds=3, target="category")
    assert result.head.labels == target.classes and result.head.label_groups == target.groups
    assert result.cv["stratified"]["accuracy"] == 1.0 and result.head.info["target"] == "category"


def test_category_target_refuses_missing_or_inconsistent_categories(spec) -> None:
    from slmkit.converter.routing.train import head_target

    with pytest.raises(SlmkitError, match="needs a `task_category` on every request; 72 of 72 have none"):
        head_target(_dataset(), list(TIERS), "category")
    mixed = Dataset([LabelledRequest(Request(user="a"), "simple", category="qa"),
                     LabelledRequest(Request(user="b"), "medium", category="qa")])
    with pytest.raises(SlmkitError, match="task_category 'qa' is labelled both simple and medium"):
        head_target(mixed, list(TIERS), "category")


def test_auto_target_is_category_only_when_every_request_has_one() -> None:
    from slmkit.cli.routing import resolve_target

    labelled = Dataset([LabelledRequest(Request(user="a"), "simple", category="qa")])
    assert resolve_target("auto", labelled) == "category" and resolve_target("auto", _dataset()) == "tier"
    assert resolve_target("auto", labelled, method="probe") == "tier"
    with pytest.raises(SlmkitError, match="--target category is for the classifier router"):
        resolve_target("category", labelled, method="probe")
    with pytest.raises(SlmkitError, match="No router target named 'tiers'"):
        resolve_target("tiers", labelled)
