"""Which requests a router head was trained on, kept in the head so that evaluating or simulating
on them can be flagged: a router scored on its own training requests looks far better than it is
on traffic it never saw (the shipped router: 0.97 on a random split of its pool, 0.62 leave-one-
source-out).

A request's fingerprint is the first 8 bytes of BLAKE2b over its NFC-normalized, stripped system
prompt and last user message joined by U+001F; the head's `info.train_fingerprints` holds them
sorted, base64-encoded (8 bytes per request: 45 KB for 5,604 requests). Collisions between distinct
requests have probability about n * m / 2^64.
"""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from slmkit.runtime.request import Request
from slmkit.runtime.spec import RouterSpec

FINGERPRINT = "blake2b-64(nfc(system).strip() U+001F nfc(user).strip())"
DIGEST_BYTES = 8


def fingerprint(request: Request) -> bytes:
    """The 8-byte fingerprint of a request (its system prompt and last user message)."""
    text = "\x1f".join(unicodedata.normalize("NFC", part).strip() for part in (request.system, request.user))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def fingerprint_record(requests: Iterable[Request]) -> dict:
    """What a head's `info.train_fingerprints` holds for the requests it was trained on."""
    digests = sorted({fingerprint(r) for r in requests})
    return {"hash": FINGERPRINT, "count": len(digests), "digests": base64.b64encode(b"".join(digests)).decode("ascii")}


def trained_on(info: dict | None) -> frozenset[bytes] | None:
    """The fingerprints a head's info records, or None for a head trained before they were kept
    (or with another hash)."""
    record = (info or {}).get("train_fingerprints")
    if not isinstance(record, dict) or record.get("hash") != FINGERPRINT:
        return None
    blob = base64.b64decode(record.get("digests", ""))
    return frozenset(blob[i:i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES))


def head_info(spec: RouterSpec, base_dir: Path) -> dict | None:
    """The `info` of the spec's trained head (classifier, probe), None for routers without one
    or a head file that cannot be read (loading the router reports that)."""
    if not spec.weights:
        return None
    try:
        header = json.loads((Path(base_dir) / spec.weights).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return header.get("info") if isinstance(header, dict) else None


def training_overlap(info: dict | None, requests: list[Request]) -> dict | None:
    """How many of `requests` the head was trained on: {"requests", "seen", "share"}; None when
    the head keeps no fingerprints."""
    seen = trained_on(info)
    if seen is None or not requests:
        return None
    hits = sum(fingerprint(r) in seen for r in requests)
    return {"requests": len(requests), "seen": hits, "share": hits / len(requests)}


def overlap_warning(overlap: dict | None) -> str | None:
    """One sentence for a report when any evaluated request is one the router was trained on."""
    if not overlap or not overlap["seen"]:
        return None
    return (f"{overlap['seen']:,} of {overlap['requests']:,} requests ({100 * overlap['share']:.1f} %) are ones the router "
            f"was trained on: its accuracy on them overstates how it routes traffic it never saw (estimate that with "
            f"`slmkit router cv --by source`, or evaluate on requests kept out of training)")
