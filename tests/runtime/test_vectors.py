"""The golden vectors: the contract the Kotlin and Swift ports run too."""

from __future__ import annotations

import json
import math
from importlib import resources

import pytest

from slmkit.runtime.chat_template import fill_dates
from slmkit.runtime.confidence import rating_or_default, should_escalate
from slmkit.runtime.confidence.head import answer_features, head_value, option_features
from slmkit.runtime.confidence.logprob import token_confidence, token_stats
from slmkit.runtime.confidence.options import answer_prefix, answer_text, choose, extract_options
from slmkit.runtime.confidence.rating import expected_rating, rating_distribution
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.prompts import render_rating_prompt, render_router_prompt, router_input
from slmkit.runtime.router import features
from slmkit.runtime.router.classifier import classifier_text
from slmkit.runtime.request import Request
from slmkit.runtime.router.conversation import costlier
from slmkit.runtime.router.decision import RouteDecision, decision_from_grouped_logits, decision_from_logits
from slmkit.runtime.router.parse import parse_router_output
from slmkit.runtime.spec import PolicySpec, TrainedHead, Truncation
from tests.runtime.vector_pipeline import run_pipeline_vector

VECTOR_FILES = ("router_output", "rating", "policy", "label_probabilities", "prompts", "features", "options",
                "option_choice", "rating_distribution", "token_confidence", "trained_head", "conversation",
                "grouped_probabilities", "date_slots", "router_head", "pipeline")


def vectors(name: str) -> list[dict]:
    text = (resources.files("slmkit.runtime") / "vectors" / f"{name}.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.split("\n") if line.strip()]  # as the ports split
    assert rows, f"{name}.jsonl is empty"
    return rows


def ids(name: str) -> list[str]:
    return [row["name"] for row in vectors(name)]


def test_every_vector_file_is_installed_and_named_uniquely() -> None:
    for name in VECTOR_FILES:
        names = ids(name)
        assert len(names) == len(set(names)), f"duplicate vector names in {name}.jsonl"


@pytest.mark.parametrize("row", vectors("router_output"), ids=ids("router_output"))
def test_router_output(row: dict) -> None:
    parsed = parse_router_output(row["text"], tuple(row["labels"]))
    expected = row["expected"]
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.label == expected["label"]
        assert parsed.confidence == pytest.approx(expected["confidence"]) if expected["confidence"] is not None \
            else parsed.confidence is None


@pytest.mark.parametrize("row", vectors("rating"), ids=ids("rating"))
def test_rating(row: dict) -> None:
    rating, parsed = rating_or_default(row["text"], row["unparsable_rating"])
    assert (rating, parsed) == (row["expected"]["rating"], row["expected"]["parsed"])
    assert should_escalate(rating, row["threshold"]) is row["expected"]["escalate"]


@pytest.mark.parametrize("row", vectors("policy"), ids=ids("policy"))
def test_policy(row: dict) -> None:
    decision = RouteDecision(row["decision"]["label"], row["decision"]["confidence"])
    assert choose_tier(decision, PolicySpec.model_validate(row["policy"])).tier == row["expected"]["tier"]


@pytest.mark.parametrize("row", vectors("label_probabilities"), ids=ids("label_probabilities"))
def test_label_probabilities(row: dict) -> None:
    logits = [-math.inf if x == "-inf" else x for x in row["logits"]]
    biased = [x + row["bias"].get(label, 0.0) for x, label in zip(logits, row["labels"])]
    decision = decision_from_logits(row["labels"], biased, row["temperature"])
    assert decision.label == row["expected"]["label"]
    assert decision.confidence == pytest.approx(row["expected"]["confidence"], abs=1e-9)
    for label, p in row["expected"]["probabilities"].items():
        assert decision.probabilities[label] == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("row", vectors("grouped_probabilities"), ids=ids("grouped_probabilities"))
def test_grouped_probabilities(row: dict) -> None:
    logits = [-math.inf if x == "-inf" else x for x in row["logits"]]
    decision = decision_from_grouped_logits(row["labels"], row["classes"], logits, row["groups"], row["temperature"])
    assert decision.label == row["expected"]["label"] and decision.raw.split(" ")[0] == row["expected"]["top_class"]
    assert decision.confidence == pytest.approx(row["expected"]["confidence"], abs=1e-9)
    for label, p in row["expected"]["probabilities"].items():
        assert decision.probabilities[label] == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("row", vectors("prompts"), ids=ids("prompts"))
def test_prompts(row: dict) -> None:
    if row["kind"] == "router":
        text = render_router_prompt(row["template"], row["system"], row["user"], Truncation(**row["truncation"]),
                                    row.get("earlier", ()))
    else:
        text = render_rating_prompt(row["template"], row["question"], row["answer"])
    assert text == row["expected"]


@pytest.mark.parametrize("row", vectors("features"), ids=ids("features"))
def test_features(row: dict) -> None:
    expected = row["expected"]
    if "fnv1a_input" in row:
        assert features.fnv1a(row["fnv1a_input"]) == expected["fnv1a"]
        return
    earlier = row.get("earlier", [])
    system, user = router_input(row["system"], row["user"], Truncation(**row["truncation"]), earlier)
    text = classifier_text(system, user)
    assert text == expected["text"]
    assert len(features.feature_strings(text)) == expected["feature_count"]
    hashed = features.hashed(text, row["buckets"])
    assert sorted(hashed) == expected["indices"]
    assert all(v == pytest.approx(expected["value"]) for v in hashed.values())
    assert features.dense(row["system"], "\n".join([*earlier, row["user"]])) == pytest.approx(expected["dense"])


@pytest.mark.parametrize("row", vectors("conversation"), ids=ids("conversation"))
def test_conversation(row: dict) -> None:
    expected = row["expected"]
    if row["kind"] == "earlier":
        request = Request(user=row["user"], history=tuple(row["history"]))
        assert list(request.earlier_user_turns(row["history_turns"])) == expected["earlier"]
        return
    policy = PolicySpec.model_validate(row["policy"])
    decisions = [RouteDecision(row[key]["label"], row[key]["confidence"]) for key in ("last_message", "conversation")]
    chosen, which = costlier(*decisions, policy, row["tiers"])
    assert which == expected["chosen"] and choose_tier(chosen, policy).tier == expected["tier"]


class VectorContinuation:
    """The scripted engine of option_choice/rating_distribution vectors: after the tokens appended
    so far (`next[i].after`), the named token ids have the given probabilities and the rest of the
    mass spreads evenly over the other ids of a `vocab_size` vocabulary. `spelled` tokenizes."""

    def __init__(self, row: dict) -> None:
        self.row, self.appended, self.prompt_tokens = row, [], 0

    def tokenize(self, text: str) -> list[int]:
        return self.row["spelled"][text]

    def append(self, tokens) -> None:
        self.appended += list(tokens)

    def logprobs(self):
        import numpy as np

        named = next((n["probabilities"] for n in self.row["next"] if n["after"] == self.appended), {})
        rest = (1 - sum(named.values())) / (self.row["vocab_size"] - len(named))
        probabilities = np.full(self.row["vocab_size"], rest)
        for token, p in named.items():
            probabilities[int(token)] = p
        return np.log(probabilities)


@pytest.mark.parametrize("row", vectors("options"), ids=ids("options"))
def test_options(row: dict) -> None:
    expected = row["expected"]
    assert extract_options(row["prompt"]) == expected["options"]
    assert answer_prefix(row["prompt"]) == expected["answer_prefix"]
    for option, text in expected["answer_text"].items():
        assert answer_text(row["prompt"], option) == text


@pytest.mark.parametrize("row", vectors("option_choice"), ids=ids("option_choice"))
def test_option_choice(row: dict) -> None:
    continuation = VectorContinuation(row)
    choice = choose(continuation, row["options"])
    assert choice.index == row["expected"]["index"] and continuation.appended == row["expected"]["appended"]
    assert choice.probability == pytest.approx(row["expected"]["probability"], abs=1e-9)
    assert choice.margin == pytest.approx(row["expected"]["margin"], abs=1e-9)


@pytest.mark.parametrize("row", vectors("trained_head"), ids=ids("trained_head"))
def test_trained_head(row: dict) -> None:
    if row["kind"] == "option":
        found = option_features(row["probability"], row["margin"], row["count"], row["prompt_tokens"])
    else:
        found = answer_features(row["logprobs"], row["margins"], row["prompt_tokens"])
    assert found == pytest.approx(row["expected"]["features"], abs=1e-9)
    assert head_value(TrainedHead(**row["head"]), found) == pytest.approx(row["expected"]["value"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("row", vectors("rating_distribution"), ids=ids("rating_distribution"))
def test_rating_distribution(row: dict) -> None:
    distribution = rating_distribution(VectorContinuation(row))
    for rating, p in row["expected"]["distribution"].items():
        assert distribution[int(rating)] == pytest.approx(p, abs=1e-9)
    assert expected_rating(distribution) == pytest.approx(row["expected"]["expected_rating"], abs=1e-9)


@pytest.mark.parametrize("row", vectors("token_confidence"), ids=ids("token_confidence"))
def test_token_confidence(row: dict) -> None:
    import numpy as np

    if "feature" in row:
        assert token_confidence(row["feature"], row["logprobs"], row["margins"]) == pytest.approx(row["expected"], abs=1e-9)
    else:
        logprob, margin = token_stats(np.array(row["logits"], dtype=np.float32), row["token"])
        assert (logprob, margin) == pytest.approx((row["expected"]["logprob"], row["expected"]["margin"]), abs=1e-9)


@pytest.mark.parametrize("row", vectors("date_slots"), ids=ids("date_slots"))
def test_date_slots(row: dict) -> None:
    from datetime import datetime

    assert fill_dates(row["text"], datetime(**row["now"])) == row["expected"]


@pytest.mark.parametrize("row", vectors("router_head"), ids=ids("router_head"))
def test_router_head(row: dict) -> None:
    import base64

    from slmkit.runtime.errors import SlmkitError
    from slmkit.runtime.router.head import head_from

    blob = base64.b64decode(row["weights_base64"])
    if row["expected"]["error"]:
        with pytest.raises(SlmkitError):
            head_from(json.loads(row["header_json"]), blob, row["name"])
        return
    head = head_from(json.loads(row["header_json"]), blob, row["name"])
    sparse = {int(k): v for k, v in row["input"]["sparse"].items()}
    assert head.logits(sparse, row["input"]["dense"]).tolist() == pytest.approx(row["expected"]["logits"], rel=1e-9)


@pytest.mark.parametrize("row", vectors("pipeline"), ids=ids("pipeline"))
def test_pipeline(row: dict) -> None:
    got, expected = run_pipeline_vector(row), row["expected"]
    if "error" in expected:
        assert got.get("error", "").startswith(expected["error"]), got
    else:
        assert got == expected
