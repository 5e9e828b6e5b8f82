"""Token statistics and the constrained self-rating read from probabilities, not text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slmkit.runtime.confidence.logprob import FEATURES, log_softmax, token_confidence, token_stats
from slmkit.runtime.confidence.rating import expected_rating, rating_distribution
from tests.runtime.fakes import ScriptedContinuation


def test_token_stats_are_log_softmax_and_margin() -> None:
    logits = np.array([2.0, 1.0, -1.0], dtype=np.float32)
    logprob, margin = token_stats(logits, 0)
    assert logprob == pytest.approx(2.0 - math.log(math.exp(2) + math.exp(1) + math.exp(-1)))
    assert margin == pytest.approx(1.0)
    assert token_stats(logits, 1)[1] == pytest.approx(-1.0)
    assert np.exp(log_softmax(np.array([1000.0, 1000.0]))).sum() == pytest.approx(1.0)


def test_features() -> None:
    logprobs, margins = [math.log(0.5), math.log(0.8)], [0.0, 2.0]
    assert token_confidence("mean", logprobs, margins) == pytest.approx(math.sqrt(0.4))
    assert token_confidence("min", logprobs, margins) == pytest.approx(0.5)
    assert token_confidence("first", logprobs, margins) == pytest.approx(0.5)
    assert token_confidence("first_margin", logprobs, margins) == pytest.approx(0.5)
    assert token_confidence("mean_margin", logprobs, margins) == pytest.approx(1 / (1 + math.exp(-1)))
    assert all(token_confidence(f, [], []) == 0.0 for f in FEATURES)
    with pytest.raises(ValueError, match="unknown"):
        token_confidence("median", logprobs, margins)


def test_rating_distribution_splits_a_shared_first_token() -> None:
    """"10" spelled "1" "0": P(1) and P(10) share the first token's mass, split by the next token."""
    vocab = [str(d) for d in range(10)] + ["x"]

    def spell(text: str) -> str:
        return " ".join(text)

    continuation = ScriptedContinuation(vocab, {(): {"1": 0.2, "8": 0.4, "x": 0.2}, ("1",): {"0": 0.75}})
    continuation.tokenize = lambda text: [vocab.index(c) for c in spell(text).split()]  # type: ignore[method-assign]
    distribution = rating_distribution(continuation)
    mass = {1: 0.2 * 0.25, 10: 0.2 * 0.75, 8: 0.4}
    rest = (1 - 0.8) / 8  # the other digits' share of the root
    total = sum(mass.values()) + rest * 7
    assert distribution[10] == pytest.approx(mass[10] / total) and distribution[8] == pytest.approx(0.4 / total)
    assert sum(distribution.values()) == pytest.approx(1.0)
    assert expected_rating(distribution) == pytest.approx(sum(r * p for r, p in distribution.items()))
