"""The self-rating check: parse "how sure are you, 1-10" and decide whether to escalate.

Pinned by vectors/rating.jsonl. Unparsable text gets the spec's `unparsable_rating` (the seed: 5,
which is below the default threshold 7, so an unreadable rating escalates).
"""

from __future__ import annotations

import re

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
