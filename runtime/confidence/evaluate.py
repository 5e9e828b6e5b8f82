"""`slmkit confidence eval`: how well each confidence method tells right answers from wrong ones.

Every method runs on the same answers of one tier over a gold set (JSONL lines
`{"prompt", "context" (optional), "references": [...]}`). An answer is right when it contains one
of the references, case-insensitive, with "_" and space equivalent. Per method: AUROC of its
value for right vs wrong, and at the spec's threshold the share kept on the tier, the accuracy of
kept and of escalated answers, and the time the check adds (p50). With several sources, each
threshold is also calibrated leave-one-source-out (Youden's J on the other sources) and scored on
the held-out one: the number that says how the method does on traffic it was not tuned on.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmkit.runtime.backends.base import BackendError
from slmkit.runtime.confidence.logprob import FEATURES, token_confidence
from slmkit.runtime.confidence.head import head_value
from slmkit.runtime.confidence.methods import answer_from_options, free_answer_features, sampled_rating, self_rating
from slmkit.runtime.data import read_lines
from slmkit.runtime.spec import ConfidenceCheckSpec


@dataclass(frozen=True)
class GoldItem:
    id: str
    source: str
    user: str  # prompt (+ "\n\n" + context)
    references: tuple[str, ...]


def parse_gold(record: object) -> GoldItem:
    """One gold line: `prompt`, optional `context` (appended after a blank line) and a non-empty list
    of `references`. Raises ValueError naming the field when the line is malformed (read_lines turns
    it into a skipped line).
    """
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    prompt, context, refs = record.get("prompt"), record.get("context") or "", record.get("references")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("no `prompt` string")
    if not isinstance(context, str):
        raise ValueError("`context` is not a string")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r.strip() for r in refs):
        raise ValueError("`references` must be a non-empty list of strings")
    return GoldItem(str(record.get("id", "")), str(record.get("source", "")),
                    f"{prompt}\n\n{context}" if context else prompt, tuple(refs))


def read_gold(path: Path) -> list[GoldItem]:
    """Raises SlmkitError when the file is missing or holds no usable line (bad lines are skipped)."""
    return read_lines(path, parse_gold, "requests with references").items


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def is_right(answer: str, references: Sequence[str]) -> bool:
    """The answer contains one of the references (case-insensitive, "_" = space, runs of spaces as one)."""
    normal = _normal(answer)
    return any(_normal(ref) in normal for ref in references)


def auroc(values: Sequence[float], right: Sequence[bool]) -> float | None:
    """P(a right answer scores above a wrong one), ties counting half; None without both kinds."""
    pos = [v for v, r in zip(values, right) if r]
    neg = [v for v, r in zip(values, right) if not r]
    if not pos or not neg:
        return None
    ranked = sorted((v, i) for i, v in enumerate(values))
    ranks = [0.0] * len(values)
    start = 0
    while start < len(ranked):
        end = start
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[start][0]:
            end += 1
        for k in range(start, end + 1):
            ranks[ranked[k][1]] = (start + end) / 2 + 1
        start = end + 1
    rank_sum = sum(rank for rank, r in zip(ranks, right) if r)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def youden_threshold(values: Sequence[float], right: Sequence[bool]) -> float | None:
    """The threshold (keep when value >= it) maximizing TPR - FPR; None without both kinds."""
    pos, neg = sum(right), len(right) - sum(right)
    if not pos or not neg:
        return None
    best, best_j = None, -math.inf
    for t in sorted(set(values)):
        tpr = sum(v >= t and r for v, r in zip(values, right)) / pos
        fpr = sum(v >= t and not r for v, r in zip(values, right)) / neg
        if tpr - fpr > best_j:
            best, best_j = t, tpr - fpr
    return best


def _accuracy(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def at_threshold(values: Sequence[float], right: Sequence[bool], threshold: float) -> dict[str, float | None]:
    """What keeping answers whose confidence >= `threshold` does: share kept on the tier, accuracy of
    the kept and of the escalated answers (None when a group is empty).
    """
    kept = [r for v, r in zip(values, right) if v >= threshold]
    escalated = [r for v, r in zip(values, right) if v < threshold]
    return {"threshold": threshold, "kept_share": len(kept) / len(values) if values else None,
            "kept_accuracy": _accuracy(kept), "escalated_accuracy": _accuracy(escalated)}


@dataclass
class Observation:
    """One gold item through one tier: the free answer and every method's value on it."""

    item: GoldItem
    answer: str
    right: bool
    answer_ms: float
    values: dict[str, float] = field(default_factory=dict)
    correct: dict[str, bool] = field(default_factory=dict)  # per method: is the answer it keeps right
    ms: dict[str, float] = field(default_factory=dict)
    # What a `trained` head reads about the answer it keeps (the option answer when the request
    # has a closed set, else the free answer), and whether that answer is right.
    features: dict[str, float] = field(default_factory=dict)
    features_right: bool = False
    features_ms: float = 0.0

    def record(self) -> dict[str, Any]:
        """One JSONL line for `confidence train --observations` (what a head is fitted on)."""
        return {"id": self.item.id, "source": self.item.source, "right": self.features_right,
                "features": self.features, "answer": self.answer, "values": self.values}


# `trained:held_out`: a head fitted on the other sources, scored on each held-out one (confidence train).
TRAINED_HELD_OUT = "trained:held_out"
METHOD_ORDER = ("sampled_rating", "self_rating", *(f"token_logprob:{f}" for f in FEATURES), "options", "trained",
                TRAINED_HELD_OUT)


def observe(backend: Any, check: ConfidenceCheckSpec, item: GoldItem, max_tokens: int,
            ratings: bool = True) -> Observation:
    """Every method on one item (raises BackendError when the tier fails); without `ratings`,
    not the two rating methods (what `confidence train` needs is the answers' own features).

    Prompts are evaluated once where methods share them (the engine reuses its KV cache), and
    each method's time is what it costs alone: `options` (which replaces the generation) is its
    option walk plus the answer's prefill (time to first token); `sampled_rating` is its reply
    plus the rating prompt's prefill, which `self_rating` measured cold just before.
    """
    messages = [{"role": "user", "content": item.user}]
    generation = backend.generate(messages, max_tokens, logprobs=True)
    right = is_right(generation.text, item.references)
    obs = Observation(item, generation.text, right, generation.latency_ms)
    assert generation.token_logprobs is not None and generation.token_margins is not None
    for feature in FEATURES:
        name = f"token_logprob:{feature}"
        obs.values[name] = token_confidence(feature, generation.token_logprobs, generation.token_margins)
        obs.correct[name] = right
        obs.ms[name] = 0.0
    option = answer_from_options(backend, messages, item.user)
    if option is not None:
        obs.values["options"] = option.score.value
        obs.correct["options"] = is_right(option.generation.text, item.references)
        obs.ms["options"] = option.score.seconds * 1000 + (generation.ttft_ms or 0.0)
        obs.features, obs.features_right, obs.features_ms = option.features, obs.correct["options"], obs.ms["options"]
    else:
        obs.features, obs.features_right = free_answer_features(generation), right
    if check.head is not None:
        obs.values["trained"] = head_value(check.head, obs.features)
        obs.correct["trained"], obs.ms["trained"] = obs.features_right, obs.features_ms
    if not ratings:
        return obs
    rating = self_rating(backend, check, item.user, generation.text)
    obs.values["self_rating"], obs.correct["self_rating"], obs.ms["self_rating"] = rating.value, right, rating.seconds * 1000
    sampled = sampled_rating(backend, check, item.user, generation.text)
    obs.values["sampled_rating"], obs.correct["sampled_rating"] = sampled.value, right
    obs.ms["sampled_rating"] = sampled.seconds * 1000 + rating.details["prefill_ms"]
    return obs


def run(backend: Any, check: ConfidenceCheckSpec, items: list[GoldItem], max_tokens: int,
        advance: Callable[[], None] = lambda: None, ratings: bool = True) -> tuple[list[Observation], list[str]]:
    """Observations, and "id: reason" for items the tier failed on (left out, never fatal)."""
    observations, failures = [], []
    for item in items:
        try:
            observations.append(observe(backend, check, item, max_tokens, ratings))
        except BackendError as exc:
            failures.append(f"{item.id or '?'}: {exc.reason}")
        advance()
    return observations, failures


def _threshold_for(name: str, check: ConfidenceCheckSpec) -> float | None:
    """The spec's threshold for a reported method (a token_logprob row only for the spec's feature)."""
    method, _, feature = name.partition(":")
    if feature and feature != check.feature:
        return None
    if method == check.method:
        return check.threshold
    if check.method == "options" and method == check.fallback:
        return check.fallback_threshold
    return None


def summarize(observations: list[Observation], check: ConfidenceCheckSpec) -> dict[str, Any]:
    """The report: keys `n`, `accuracy`, `default_method`, `methods` are a stable contract."""
    methods: dict[str, Any] = {}
    sources = sorted({o.item.source for o in observations})
    for name in METHOD_ORDER:
        rows = [o for o in observations if name in o.values]
        if not rows:
            continue
        values = [o.values[name] for o in rows]
        right = [o.correct[name] for o in rows]
        threshold = _threshold_for(name, check)
        fitted = youden_threshold(values, right)
        entry: dict[str, Any] = {
            "n": len(rows), "accuracy": _accuracy(right), "auroc": auroc(values, right),
            **(at_threshold(values, right, threshold if threshold is not None else fitted) if (threshold, fitted) != (None, None)
               else {"threshold": None, "kept_share": None, "kept_accuracy": None, "escalated_accuracy": None}),
            "threshold_source": "spec" if threshold is not None else "fitted on this set (in-sample)",
            "ms_p50": statistics.median(o.ms[name] for o in rows),
            "by_source": {},
        }
        for held_out in sources if len(sources) > 1 else []:
            train = [(o.values[name], o.correct[name]) for o in rows if o.item.source != held_out]
            test = [(o.values[name], o.correct[name]) for o in rows if o.item.source == held_out]
            if not test:
                continue
            calibrated = youden_threshold([v for v, _ in train], [r for _, r in train])
            entry["by_source"][held_out] = {
                "n": len(test), "accuracy": _accuracy([r for _, r in test]),
                "auroc": auroc([v for v, _ in test], [r for _, r in test]),
                **(at_threshold([v for v, _ in test], [r for _, r in test], calibrated) if calibrated is not None else
                   {"threshold": None, "kept_share": None, "kept_accuracy": None, "escalated_accuracy": None}),
            }
        methods[name] = entry
    return {
        "n": len(observations),
        "accuracy": _accuracy([o.right for o in observations]),
        "answer_ms_p50": statistics.median(o.answer_ms for o in observations) if observations else None,
        "default_method": check.method if check.method != "token_logprob" else f"token_logprob:{check.feature}",
        "methods": methods,
    }
