"""API keys for `slmkit serve`: OpenAI-style `Authorization: Bearer KEY`, compared in constant time,
with optional per-key request and spend limits (docs/security.md).

Keys are held only as SHA-256 digests and never logged, traced or echoed; a key is named in this
process by its position ("key 2"), never by its text. Every presented key is compared with every
configured one (`hmac.compare_digest` on equal-length digests), so neither the match position nor
a common prefix shows in the timing.

Limits are rolling windows per key: requests in the last 60 s and USD spent in the last 24 h (the
cost model's price of each answered request, `Response.cost_usd`). A request is admitted while the
key is under both limits; its own cost is counted after it is answered, so one request can take a
key past its spend limit, after which it waits until enough spend ages out of the window.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slmkit.runtime.errors import SlmkitError

ENV_KEYS = "SLMKIT_API_KEY"      # one key, or several separated by commas
MIN_KEY_CHARS = 16               # shorter keys are guessable; secrets.token_urlsafe(32) gives 43
REQUEST_WINDOW_S = 60.0
SPEND_WINDOW_S = 24 * 3600.0


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None: unlimited."""

    requests_per_minute: int | None = None
    usd_per_day: float | None = None

    def __post_init__(self) -> None:
        if self.requests_per_minute is not None and self.requests_per_minute < 1:
            raise SlmkitError("The per-key request limit must be at least 1 request per minute.")
        if self.usd_per_day is not None and self.usd_per_day <= 0:
            raise SlmkitError("The per-key spend limit must be above 0 USD per day.")


def keys_from(options: Sequence[str], environment: dict[str, str] | None = None) -> list[str]:
    """The keys `serve` accepts: every `--api-key` given, else those in SLMKIT_API_KEY (comma-separated).
    Raises SlmkitError for a key that is empty, holds whitespace or is shorter than MIN_KEY_CHARS."""
    env = os.environ if environment is None else environment
    keys = list(options) or [part.strip() for part in env.get(ENV_KEYS, "").split(",") if part.strip()]
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS or any(c.isspace() for c in key):
            raise SlmkitError(f"API key {number} is not usable: keys need at least {MIN_KEY_CHARS} characters and no "
                              f"whitespace (the key itself is not shown).",
                              hint="Generate one: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    return keys


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class ApiKeys:
    """The accepted keys and each one's recent requests and spend. Thread-safe."""

    def __init__(self, keys: Sequence[str], limits: KeyLimits = KeyLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not keys:
            raise SlmkitError("No API key given.")
        self._digests = [_digest(key) for key in keys]
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: list[deque[float]] = [deque() for _ in keys]
        self._spend: list[deque[tuple[float, float]]] = [deque() for _ in keys]

    def __len__(self) -> int:
        return len(self._digests)

    def authenticate(self, authorization: str | None) -> int | None:
        """The index of the key an `Authorization` header carries (`Bearer KEY`), None when it
        carries none of them. Constant time in the key's text: every digest is compared."""
        scheme, _, presented = (authorization or "").partition(" ")
        digest = _digest(presented.strip() if scheme.lower() == "bearer" else "")
        found = None
        for index, known in enumerate(self._digests):
            if hmac.compare_digest(digest, known) and found is None:
                found = index
        return found

    def admit(self, key: int) -> float | None:
        """Count one request for `key` and return None when it is within its limits; otherwise the
        seconds until it would be (the request is not counted)."""
        now = self._clock()
        with self._lock:
            requests, spend = self._requests[key], self._spend[key]
            while requests and now - requests[0] >= REQUEST_WINDOW_S:
                requests.popleft()
            while spend and now - spend[0][0] >= SPEND_WINDOW_S:
                spend.popleft()
            waits = []
            if self.limits.requests_per_minute is not None and len(requests) >= self.limits.requests_per_minute:
                waits.append(REQUEST_WINDOW_S - (now - requests[len(requests) - self.limits.requests_per_minute]))
            if self.limits.usd_per_day is not None:
                over, total = 0, sum(usd for _, usd in spend)
                while over < len(spend) and total >= self.limits.usd_per_day:   # spend that must age out first
                    total -= spend[over][1]
                    over += 1
                if over:
                    waits.append(SPEND_WINDOW_S - (now - spend[over - 1][0]))
            if waits:
                return max(1.0, max(waits))
            requests.append(now)
            return None

    def charge(self, key: int, usd: float) -> None:
        """Add an answered request's cost (USD) to `key`'s spend."""
        if usd > 0:
            with self._lock:
                self._spend[key].append((self._clock(), usd))

    def spent(self, key: int) -> float:
        """USD `key` spent in the last 24 h."""
        now = self._clock()
        with self._lock:
            return sum(usd for at, usd in self._spend[key] if now - at < SPEND_WINDOW_S)


def is_loopback(host: str) -> bool:
    """Whether binding `host` listens on this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False   # any other name may resolve to a public interface
