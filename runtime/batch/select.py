"""A seeded selection of a batch job's input lines (`--sample N`, `--limit N`), read in this process:
the same rule for `router eval` and `simulate`, whichever engine routes the selection afterwards."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from slmkit.runtime.errors import SlmkitError

T = TypeVar("T")


def select_lines(urls: list[str], parse: Callable[[object], T], what: str, sample: int | None = None,
                 limit: int | None = None, seed: int = 0) -> tuple[list[tuple[dict, T]], list[str]]:
    """The lines of `urls` that `parse` accepts, in file order, each as (record, parsed), and the others
    as "URL byte N: why" (`parse` raises ValueError naming the field). `sample` draws that many at random
    (seed `seed`, file order kept), then `limit` keeps the first N.

    Raises SlmkitError for a missing or unreadable input, or when no line is usable (`what` names them).
    """
    from slmkit.runtime.batch.shards import describe_all, plan, read

    chosen, skipped = [], []
    for shard in plan(describe_all(urls)):
        for offset, record, problem in read(shard):
            if problem is None:
                try:
                    chosen.append((record, parse(record)))
                    continue
                except ValueError as exc:
                    problem = str(exc)
            skipped.append(f"{shard.url} byte {offset}: {problem}")
    if not chosen:
        raise SlmkitError(f"{', '.join(urls)} holds no usable {what}{f' ({skipped[0]})' if skipped else ''}.")
    if sample is not None and sample < len(chosen):
        picked = sorted(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [chosen[i] for i in picked]
    return (chosen[:limit] if limit is not None else chosen), skipped


def write_selection(chosen: list[tuple[dict, object]], path: Path) -> str:
    """The chosen records as JSONL at `path` (what the batch router then reads); returns the path."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record, _ in chosen)
    return str(path)
