"""The seed's sampled self-rating: parse "how sure are you, 1-10" and decide whether to escalate.

The constrained `self_rating` reads the same prompt's rating from the tier's probabilities of the
tokens 1-10 instead (`rating_distribution`). Pinned by vectors/rating.jsonl and
vectors/rating_distribution.jsonl. Unparsable text gets the spec's `unparsable_rating` (the seed: 5,
which is below the default threshold 7, so an unreadable rating escalates).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slmkit.runtime.confidence.options import Continuation

_NUMBER = r"(10|[1-9](?:\.\d+)?)"
_PATTERNS = (
    rf"(?<![\d.\-]){_NUMBER}\s*(?:/|out of)\s*10\b",                     # 8/10, 7 out of 10
    rf"\b(?:rating|rate|score|confidence|confident)\b[^0-9\n\-]{{0,20}}(?<![\d.\-]){_NUMBER}(?![\d.]*\d)",  # Rating: 8
    rf"^[^\w\-]*{_NUMBER}[^\w\-]*$",                                        # the whole reply is a number
    rf"(?<![\d.\-]){_NUMBER}(?![\d]|\.\d)",                               # first number 1-10 anywhere
)


def parse_rating(text: str) -> float | None:
    """The 1-10 rating in a model's reply, or None. Numbers outside 1-10 (or negative) are not ratings."""
    for pattern in _PATTERNS:
        match = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
        if match:
            return float(match.group(1))
    return None


def rating_or_default(text: str, unparsable_rating: float) -> tuple[float, bool]:
    """(rating, parsed?) with the spec's fallback for text that holds no rating."""
    rating = parse_rating(text)
    return (rating, True) if rating is not None else (unparsable_rating, False)


def should_escalate(rating: float, threshold: float) -> bool:
    """Below the threshold escalates; the threshold itself is enough (seed: 7 stays)."""
    return rating < threshold


RATINGS = tuple(range(1, 11))


def rating_distribution(continuation: Continuation) -> dict[int, float]:
    """P(rating) for the ratings 1-10, renormalized over them (masked logits), read after the
    rating prompt. A rating whose text is several tokens (e.g. "10" as "1" "0" in SmolLM2's
    tokenizer) shares its first token with a shorter one: that token's mass is split by the
    next token's probabilities (one more forward pass); the shorter rating keeps every
    continuation that does not spell the longer one. At most one such shared token is expanded
    (digit tokenizers have only "1"); raises ValueError if a tokenizer needs more.
    """
    spelled = {r: continuation.tokenize(str(r)) for r in RATINGS}
    logprobs = continuation.logprobs()
    groups: dict[int, list[int]] = {}
    for rating, ids in spelled.items():
        groups.setdefault(ids[0], []).append(rating)
    shared = [t for t, ratings in groups.items() if len(ratings) > 1 or len(spelled[ratings[0]]) > 1]
    if len(shared) > 1:
        raise ValueError(f"ratings share {len(shared)} first tokens; one can be expanded")
    mass = {r: math.exp(float(logprobs[spelled[r][0]])) for r in RATINGS if spelled[r][0] not in shared}
    if shared:
        first = shared[0]
        head = math.exp(float(logprobs[first]))
        continuation.append([first])
        after = continuation.logprobs()
        longer = {r: math.exp(float(after[spelled[r][1]])) for r in groups[first] if len(spelled[r]) > 1}
        for r in groups[first]:
            mass[r] = head * (longer[r] if r in longer else max(0.0, 1.0 - sum(longer.values())))
    total = sum(mass.values())
    if total <= 0:
        return {r: 1.0 / len(RATINGS) for r in RATINGS}
    return {r: mass[r] / total for r in RATINGS}


def expected_rating(distribution: dict[int, float]) -> float:
    """The mean rating (1-10) under `distribution`."""
    return sum(r * p for r, p in distribution.items())
