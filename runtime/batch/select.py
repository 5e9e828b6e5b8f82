"""A seeded selection of a batch job's input lines (`--sample N`, `--limit N`), read in this process:
the same rule for `router eval` and `simulate`, whichever engine routes the selection afterwards."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from typing import TypeVar

from slmkit.runtime.errors import SlmkitError

T = TypeVar("T")


def _scan(urls: list[str], parse: Callable[[object], T]) -> Iterator[tuple[dict | None, T | None, str | None]]:
    """(record, parsed, None) for each line `parse` accepts, (None, None, "URL byte N: why") for the others."""
    from slmkit.runtime.batch.shards import describe_all, plan, read

    for shard in plan(describe_all(urls)):
        for offset, record, problem in read(shard):
            if problem is None:
                try:
                    yield record, parse(record), None
                    continue
                except ValueError as exc:
                    problem = str(exc)
            yield None, None, f"{shard.url} byte {offset}: {problem}"


def select_lines(urls: list[str], parse: Callable[[object], T], what: str, sample: int | None = None,
                 limit: int | None = None, seed: int = 0) -> tuple[list[tuple[dict, T]], list[str]]:
    """The lines of `urls` that `parse` accepts, in file order, each as (record, parsed), and the lines
    skipped on the way as "URL byte N: why" (`parse` raises ValueError naming the field).

    `sample` draws that many usable lines at random (seed `seed`, file order kept; two passes, only the
    drawn lines held), then `limit` keeps the first N. With `limit` alone reading stops at the N-th usable
    line, so the skipped lines are those met before it. Raises SlmkitError for a missing or unreadable
    input, or when no line is usable (`what` names them).
    """
    chosen: list[tuple[dict, T]] = []
    skipped: list[str] = []
    if sample is None:
        for record, item, problem in _scan(urls, parse):
            if problem is not None:
                skipped.append(problem)
                continue
            chosen.append((record, item))
            if limit is not None and len(chosen) >= limit:
                break
    else:
        usable = 0
        for _, _, problem in _scan(urls, parse):
            if problem is None:
                usable += 1
            else:
                skipped.append(problem)
        picked = set(random.Random(seed).sample(range(usable), sample)) if sample < usable else None
        index = 0
        for record, item, problem in _scan(urls, parse):
            if problem is None:
                if picked is None or index in picked:
                    chosen.append((record, item))
                index += 1
        chosen = chosen[:limit] if limit is not None else chosen
    if not chosen:
        raise SlmkitError(f"{', '.join(urls)} holds no usable {what}{f' ({skipped[0]})' if skipped else ''}.")
    return chosen, skipped


def selection_jsonl(chosen: list[tuple[dict, object]]) -> tuple[str, str]:
    """The chosen records as JSONL (what the batch router then reads) and a 12-hex name from its SHA-256
    (the same selection always gets the same name, so a job over it can be resumed)."""
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record, _ in chosen)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
