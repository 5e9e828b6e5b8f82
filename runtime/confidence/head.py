"""`trained`: a logistic head over what the tier's answer costs nothing to measure.

Features come from the pass that made the answer (no second pass): for an answer chosen among a
closed label set, the option walk's probability, margin and the number of options; for a free
answer, its tokens' log-probabilities. A head fitted by `slmkit confidence train` on an app's own
labelled answers maps them to the probability the answer is right:

    value = sigmoid(bias + sum_i weights[i] * (x[i] - center[i]) / scale[i])

Features an answer does not have (option features of a free answer and the reverse) are 0, and
`options` (1 or 0) lets the head give each kind its own offset. Pinned by vectors/trained_head.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

# name -> what it reads. Log-probabilities are natural logs clipped at LOGPROB_FLOOR.
FEATURES = {
    "options": "1 for an answer chosen among a closed label set, 0 for a free answer",
    "option_logprob": "ln of the chosen option's probability among the options",
    "option_margin": "closest branch of the option walk: chosen minus runner-up renormalized probability",
    "option_count": "ln of the number of options",
    "token_mean": "mean log-probability of the free answer's tokens",
    "token_min": "lowest log-probability among the free answer's tokens",
    "first_margin": "the free answer's first token: log-probability minus the runner-up's",
    "answer_tokens": "ln(1 + tokens of the free answer)",
    "prompt_tokens": "ln(1 + tokens of the prompt)",
}
LOGPROB_FLOOR = -30.0  # a token the engine gave probability ~0 (or -inf) counts as this


def _clip(logprob: float) -> float:
    return max(LOGPROB_FLOOR, logprob) if not math.isnan(logprob) else LOGPROB_FLOOR


def option_features(probability: float, margin: float, count: int, prompt_tokens: int) -> dict[str, float]:
    """Features of an answer the option walk chose (`Choice.probability`, `Choice.margin`) among
    `count` options, after a prompt of `prompt_tokens` tokens."""
    features = dict.fromkeys(FEATURES, 0.0)
    features.update(options=1.0, option_logprob=_clip(math.log(probability)) if probability > 0 else LOGPROB_FLOOR,
                    option_margin=margin, option_count=math.log(count), prompt_tokens=math.log1p(prompt_tokens))
    return features


def answer_features(logprobs: Sequence[float], margins: Sequence[float], prompt_tokens: int) -> dict[str, float]:
    """Features of a generated answer from its tokens' log-probabilities and margins (one per
    token, as `logprob.token_stats` gives them); an empty answer has token features at the floor."""
    features = dict.fromkeys(FEATURES, 0.0)
    clipped = [_clip(lp) for lp in logprobs]
    features.update(
        token_mean=sum(clipped) / len(clipped) if clipped else LOGPROB_FLOOR,
        token_min=min(clipped) if clipped else LOGPROB_FLOOR,
        first_margin=max(LOGPROB_FLOOR, min(-LOGPROB_FLOOR, margins[0])) if margins else LOGPROB_FLOOR,
        answer_tokens=math.log1p(len(clipped)), prompt_tokens=math.log1p(prompt_tokens))
    return features


class HeadLike(Protocol):
    """What head_value reads (the spec's TrainedHead): parallel lists per feature, and a bias."""

    features: list[str]
    weights: list[float]
    center: list[float]
    scale: list[float]
    bias: float


def head_value(head: HeadLike, features: Mapping[str, float]) -> float:
    """The head's probability in (0, 1) that the answer is right.

    Raises KeyError when `features` lacks one the head reads.
    """
    z = head.bias + sum(w * (features[name] - c) / s
                        for name, w, c, s in zip(head.features, head.weights, head.center, head.scale))
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
