"""Workloads to replay: the shared train-set format (labels optional) or frontier-model logs in
OpenAI chat format, as JSONL, JSONL.gz or Parquet, local or any fsspec URL (runtime/batch/shards.py
reads them). Read leniently: a bad line is reported and skipped, never fatal."""

from __future__ import annotations

from functools import partial

from slmkit.runtime.batch.select import select_lines
from slmkit.runtime.data import Dataset, LabelledRequest, parse_record, parse_references
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


WHAT = "requests (the train-set format or OpenAI chat logs)"


def read_workload(urls: list[str], labels: tuple[str, ...], sample: int | None = None, limit: int | None = None,
                  seed: int = 0) -> Dataset:
    """The workload's usable lines (runtime/batch/select.py `select_lines`: `sample` drawn with `seed`, then
    the first `limit`) as a Dataset, the skipped ones named. Raises SlmkitError when no line is usable."""
    chosen, skipped = select_lines(urls, partial(parse_line, labels=labels), WHAT, sample, limit, seed)
    return Dataset([item for _, item in chosen], skipped)
