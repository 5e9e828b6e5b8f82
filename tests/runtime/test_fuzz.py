"""Hypothesis: no parser or policy input, however odd, raises or leaves its contract."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from slmkit.runtime.confidence import parse_rating, rating_or_default
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.prompts import fill, truncate
from slmkit.runtime.router.decision import RouteDecision, decision_from_logits
from slmkit.runtime.router.parse import parse_confidence, parse_router_output
from slmkit.runtime.spec import PolicySpec

LABELS = ("simple", "medium", "complex")
TIERS = ["on-device", "mid", "frontier"]
json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)
router_like = st.builds(lambda label, conf, junk_a, junk_b: f"{junk_a}{{\"complexity\": \"{label}\", \"confidence\": {conf}}}{junk_b}",
                        st.sampled_from(LABELS), st.floats(0, 1), st.text(max_size=30), st.text(max_size=30))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), router_like, json_values.map(json.dumps)))
def test_router_parser_never_raises_and_stays_in_contract(text: str) -> None:
    parsed = parse_router_output(text, LABELS)
    if parsed is not None:
        assert parsed.label in LABELS
        assert parsed.confidence is None or 0.0 <= parsed.confidence <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LABELS), st.floats(0, 1), st.text(max_size=40))
def test_well_formed_json_is_always_read_back(label: str, confidence: float, prose: str) -> None:
    text = prose.replace("{", "(").replace("}", ")") + json.dumps({"complexity": label, "confidence": confidence})
    parsed = parse_router_output(text, LABELS)
    assert parsed is not None and parsed.label == label and parsed.confidence == confidence


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_confidence_values_are_probabilities_or_none(value: object) -> None:
    result = parse_confidence(value)
    assert result is None or (math.isfinite(result) and 0.0 <= result <= 1.0)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_rating_parser_returns_1_to_10_or_default(text: str) -> None:
    rating = parse_rating(text)
    assert rating is None or 1.0 <= rating <= 10.0
    value, parsed = rating_or_default(text, 5)
    assert parsed == (rating is not None) and (value == rating if parsed else value == 5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10))
def test_any_bare_rating_is_read(n: int) -> None:
    assert parse_rating(str(n)) == n and parse_rating(f"I'd say {n}/10.") == n


policies = st.builds(
    lambda tiers, mins, low, unparsed: PolicySpec.model_validate({
        "routes": [{"label": label, "tier": tier, "min_confidence": m} for label, tier, m in zip(LABELS, tiers, mins)],
        "low_confidence_tier": low, "unparsed_tier": unparsed}),
    st.lists(st.sampled_from(TIERS), min_size=3, max_size=3), st.lists(st.floats(0, 1), min_size=3, max_size=3),
    st.sampled_from(TIERS), st.sampled_from(TIERS))


@settings(max_examples=300, deadline=None)
@given(policies, st.one_of(st.none(), st.sampled_from(LABELS)), st.floats(0, 1))
def test_policy_always_names_a_configured_tier(policy: PolicySpec, label: str | None, confidence: float) -> None:
    choice = choose_tier(RouteDecision(label, confidence), policy)
    assert choice.tier in TIERS and choice.reason
    if label is None:
        assert choice.tier == policy.unparsed_tier
    else:
        route = next(r for r in policy.routes if r.label == label)
        assert choice.tier == (route.tier if confidence >= route.min_confidence else policy.low_confidence_tier)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3), st.floats(0.05, 20))
def test_calibrated_probabilities_sum_to_one(logits: list[float], temperature: float) -> None:
    decision = decision_from_logits(list(LABELS), logits, temperature)
    assert math.isclose(sum(decision.probabilities.values()), 1.0, rel_tol=1e-9)
    assert decision.confidence == max(decision.probabilities.values())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100), st.text(max_size=100))
def test_fill_never_substitutes_inside_values(system: str, user: str) -> None:
    assert fill("<{system}|{user}>", system=system, user=user) == f"<{system}|{user}>"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600), st.integers(0, 400), st.integers(0, 200))
def test_truncate_bounds_length(text: str, head: int, tail: int) -> None:
    cut = truncate(text, head, tail)
    assert cut == text if len(text) <= head + tail else (cut.startswith(text[:head]) and len(cut) <= head + tail + 3)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_spec_parser_raises_only_its_own_error(data: object) -> None:
    from slmkit.runtime.errors import SlmkitError
    from slmkit.runtime.spec import parse_spec

    try:
        parse_spec(data)
    except SlmkitError:
        pass


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_data_lines_are_accepted_or_refused_with_a_reason(record: object) -> None:
    from slmkit.runtime.data import parse_record

    try:
        item = parse_record(record, LABELS)
    except ValueError as exc:
        assert str(exc)
    else:
        assert item.request.user and item.tier in (None, *LABELS)
