"""The classifier router's features: hashed words, word pairs and character trigrams, plus length.

Designed to be ported line by line (Kotlin, Swift) and pinned by vectors/features.jsonl:
lowercase, words = maximal runs of letters/digits, FNV-1a 32-bit hashes of UTF-8 feature
strings modulo the bucket count, binary presence, L2-normalized; then a few dense numbers
about the *whole* request (the router reads a truncated text, but length says a lot: a long
document to summarize is a different tier from a short one).
"""

from __future__ import annotations

import math
import re

WORD = re.compile(r"[^\W_]+")
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
DENSE_FEATURES = ("log_user_chars", "log_user_lines", "log_system_chars", "digit_share")


def fnv1a(text: str) -> int:
    """FNV-1a 32-bit of the UTF-8 bytes (the same integer in every language)."""
    h = FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h


def feature_strings(text: str) -> set[str]:
    """w:word, b:word word, c:3 code points of " word " (a 1-character word gives one: " a ")."""
    words = WORD.findall(text.lower())
    features = {f"w:{w}" for w in words}
    features.update(f"b:{a} {b}" for a, b in zip(words, words[1:]))
    for w in words:
        padded = f" {w} "
        features.update(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
    return features


def hashed(text: str, buckets: int) -> dict[int, float]:
    """Bucket -> weight, L2-normalized over distinct buckets (collisions count once)."""
    indices = {fnv1a(f) % buckets for f in feature_strings(text)}
    if not indices:
        return {}
    value = 1.0 / math.sqrt(len(indices))
    return {i: value for i in sorted(indices)}


def dense(system: str, user: str) -> list[float]:
    """Whole-request numbers, scaled to roughly 0..1."""
    digits = sum(ch.isdigit() for ch in user)
    return [
        math.log1p(len(user)) / 12.0,
        math.log1p(user.count("\n")) / 8.0,
        math.log1p(len(system)) / 10.0,
        digits / len(user) if user else 0.0,
    ]
