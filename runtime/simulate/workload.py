"""Workloads to replay: the shared train-set format (labels optional) or frontier-model logs in
OpenAI chat format. Read leniently: a bad line is reported and skipped, never fatal."""

from __future__ import annotations

import random
from pathlib import Path

from slmkit.runtime.data import Dataset, LabelledRequest, parse_record, parse_references, read_lines
from slmkit.runtime.request import Request


def _chat_messages(record: dict) -> list | None:
    """`messages` at the top level, or inside a logged `request`/`body` (OpenAI batch and proxy logs)."""
    for holder in (record, record.get("request"), record.get("body")):
        if isinstance(holder, dict) and isinstance(holder.get("messages"), list):
            return holder["messages"]
    return None


def parse_line(record: object, labels: tuple[str, ...]) -> LabelledRequest:
    """A workload line: the shared format (`prompt`, `context`, `system`) or OpenAI-style `messages`, with optional
    `tier`, `source`, `template` and `references`. Raises ValueError naming the field when malformed.
    """
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    messages = _chat_messages(record)
    if messages is None:
        return parse_record(record, labels)
    if not all(isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in messages):
        raise ValueError("`messages` must be objects with string `content`")
    request = Request.from_messages(messages, id=str(record.get("id", "")))
    tier = record.get("tier")
    if tier is not None and tier not in labels:
        raise ValueError(f"tier {tier!r} is not one of {list(labels)}")
    return LabelledRequest(request, tier, str(record.get("source", "")), str(record.get("template", "")),
                           parse_references(record))


def read_workload(path: Path, labels: tuple[str, ...], sample: int | None = None, limit: int | None = None,
                  seed: int = 0) -> Dataset:
    """All usable lines; `sample` draws that many at random (seeded), `limit` keeps the first N."""
    dataset = read_lines(path, lambda record: parse_line(record, labels),
                         "requests (the train-set format or OpenAI chat logs)")
    items = dataset.items
    if sample is not None and sample < len(items):
        items = random.Random(seed).sample(items, sample)
    if limit is not None:
        items = items[:limit]
    return Dataset(items, dataset.skipped)
