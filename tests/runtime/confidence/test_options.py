"""Closed label sets: found only where a request offers one, answered with the best-scored option."""

from __future__ import annotations

import math

import pytest

from slmkit.runtime.confidence.options import answer_prefix, answer_text, choose, extract_options
from tests.runtime.fakes import ScriptedContinuation


@pytest.mark.parametrize(("prompt", "expected"), [
    ('Return JSON of the form {"intent": "<label>"} where <label> is one of: card_arrival, lost_card, '
     "reverted_card_payment?, change_pin.\n\nMessage: hi", ["card_arrival", "lost_card", "reverted_card_payment?", "change_pin"]),
    ("Classify into exactly one of the following intents:\ncard_arrival\ncard_linking\n\nMessage: x",
     ["card_arrival", "card_linking"]),
    ("Options: a_b, c_d, e_f\n\nMessage: x\nReply with one option.", ["a_b", "c_d", "e_f"]),
    ("Possible intents: weather, alarm, other.\nUser said: \"x\"", ["weather", "alarm", "other"]),
    ("Classify the emotional tone (positive / negative / no impact / mixed) of the verse below.",
     ["positive", "negative", "no impact", "mixed"]),
    ("What is the sentiment? Answer positive, negative, neutral or mixed.\n\n\"a line\"",
     ["positive", "negative", "neutral", "mixed"]),
])
def test_lists_a_request_offers_are_found(prompt: str, expected: list[str]) -> None:
    assert extract_options(prompt) == expected


@pytest.mark.parametrize("prompt", [
    "What is the capital of France?",
    # two lists: a JSON object with two fields needs two answers
    'Return {"domain": ..., "intent": ...}. Domain is one of: auto, banking. Intent is one of: change_speed, user_name.',
    # items too long to be labels
    "Pick one of: the first very long option that is a sentence, another long sentence that is not a label.",
    "Compare (a) / (b) in the text.",
])
def test_no_closed_set_where_none_is_offered(prompt: str) -> None:
    assert extract_options(prompt) is None


def test_answers_fill_the_json_form_the_request_asks_for() -> None:
    prompt = 'Return JSON of the form {"intent": "<label>"} where <label> is one of: a, b.'
    assert answer_text(prompt, "b") == '{"intent": "b"}' and answer_prefix(prompt) == '{"intent": "'
    assert answer_text("Options: a, b", "a") == "a" and answer_prefix("Options: a, b") == ""


def test_choose_renormalizes_over_the_options_at_each_branch() -> None:
    vocab = ["card", "arrival", "linking", "pin", "x"]
    table = {(): {"card": 0.6, "pin": 0.2}, ("card",): {"arrival": 0.1, "linking": 0.3}}
    continuation = ScriptedContinuation(vocab, table)
    choice = choose(continuation, [continuation.tokenize(o) for o in ("card arrival", "card linking", "pin")])
    assert choice.index == 1
    assert choice.probability == pytest.approx(0.6 / 0.8 * 0.3 / 0.4)
    assert continuation.appended == ["card"] and continuation.reads == 2


def test_an_option_that_prefixes_another_competes_with_everything_else() -> None:
    vocab = ["no", "impact", "x", "y"]
    continuation = ScriptedContinuation(vocab, {(): {"no": 0.9}, ("no",): {"impact": 0.2}})
    choice = choose(continuation, [continuation.tokenize(o) for o in ("no", "no impact")])
    assert choice.index == 0 and choice.probability == pytest.approx(0.8)


def test_a_single_option_path_is_not_evaluated_further() -> None:
    vocab = ["a", "b", "c", "d"]
    continuation = ScriptedContinuation(vocab, {(): {"a": 0.05, "c": 0.15}})
    choice = choose(continuation, [continuation.tokenize(o) for o in ("a b", "c d")])
    assert choice.index == 1 and choice.probability == pytest.approx(0.75) and continuation.reads == 1
    assert not math.isnan(choice.probability) and continuation.appended == []


def test_choose_refuses_bad_options() -> None:
    with pytest.raises(ValueError):
        choose(ScriptedContinuation(["a"], {}), [[0], [0]])
