"""Confidence from the answer's own tokens (`token_logprob`): no second pass.

Every engine that exposes logits gives, per generated token, its log-probability and its margin
over the best other token (`token_stats`); a feature of those sequences is the confidence.
Pinned by vectors/token_confidence.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# name -> what it reads; all are probabilities in (0, 1] (the margin one is a sigmoid of a log-odds gap).
FEATURES = {
    "mean": "geometric mean of the answer tokens' probabilities: exp(mean log-probability)",
    "min": "probability of the answer's least likely token",
    "first": "probability of the answer's first token",
    "first_margin": "sigmoid of the first token's log-probability margin over the runner-up",
    "mean_margin": "sigmoid of the mean log-probability margin over the runner-up",
}


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities [vocab] float64 from raw logits [vocab] (any float dtype)."""
    values = np.asarray(logits, dtype=np.float64)
    top = values.max()
    return values - (top + math.log(np.exp(values - top).sum()))


def token_stats(logits: np.ndarray, token: int) -> tuple[float, float]:
    """(log-probability of `token`, its log-probability minus the best other token's).

    `logits` [vocab] are the raw scores the token was chosen from (before any sampling rule).
    """
    logprobs = log_softmax(logits)
    chosen = float(logprobs[token])
    others = np.delete(logprobs, token) if logprobs.size > 1 else np.array([-math.inf])
    return chosen, chosen - float(others.max())


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def token_confidence(feature: str, logprobs: Sequence[float], margins: Sequence[float]) -> float:
    """The confidence in (0, 1] a FEATURES entry gives for one answer; 0.0 for an empty answer.

    Raises ValueError for an unknown feature.
    """
    if feature not in FEATURES:
        raise ValueError(f"unknown token_logprob feature {feature!r}; known: {', '.join(FEATURES)}")
    if not logprobs:
        return 0.0
    if feature == "mean":
        return math.exp(sum(logprobs) / len(logprobs))
    if feature == "min":
        return math.exp(min(logprobs))
    if feature == "first":
        return math.exp(logprobs[0])
    if feature == "first_margin":
        return _sigmoid(margins[0])
    return _sigmoid(sum(margins) / len(margins))
