"""Labelled requests on disk (the shared train-set format), read leniently: a bad line is
reported and skipped, never fatal."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Request


@dataclass(frozen=True)
class LabelledRequest:
    request: Request
    tier: str | None          # simple | medium | complex, None when unlabelled
    source: str = ""
    template: str = ""
    references: tuple[str, ...] = ()  # gold answers, where known (confidence eval, simulate)
    category: str = ""        # the task category (`task_category`), where labelled


@dataclass
class Dataset:
    items: list[LabelledRequest]
    skipped: list[str] = field(default_factory=list)  # "line N: why"

    @property
    def labels(self) -> list[str | None]:
        return [item.tier for item in self.items]


SKIPPED_LISTED = 1000   # skipped lines a report names; the rest are counted


def skipped_lines(count: int, lines: list[str]) -> dict:
    """How every report states the input lines it skipped: {"count": all of them, "lines": the first
    SKIPPED_LISTED named ("FILE byte N: why")}."""
    return {"count": count, "lines": lines[:SKIPPED_LISTED]}


def open_text(path: Path):
    """A text handle on `path`, UTF-8, gunzipped when the name ends in .gz."""
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def parse_record(record: object, labels: tuple[str, ...]) -> LabelledRequest:
    """One line of the shared format: prompt (+ "\\n\\n" + context) is the user message; or a
    conversation as OpenAI-style `messages` (the last one a user turn)."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "messages" in record:
        return _conversation(record, labels)
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("no `prompt` string")
    context = record.get("context") or ""
    if not isinstance(context, str):
        raise ValueError("`context` is not a string")
    tier = _tier(record, labels)
    system = record.get("system") or ""
    user = f"{prompt}\n\n{context}" if context else prompt
    return LabelledRequest(Request(user=user, system=str(system), id=str(record.get("id", ""))), tier,
                           str(record.get("source", "")), str(record.get("template", "")), parse_references(record),
                           str(record.get("task_category") or ""))


def _conversation(record: dict, labels: tuple[str, ...]) -> LabelledRequest:
    messages = record["messages"]
    if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages):
        raise ValueError("`messages` must be a list of {role, content} strings")
    tier = _tier(record, labels)
    request = Request.from_messages(messages, id=str(record.get("id", "")))
    return LabelledRequest(request, tier, str(record.get("source", "")), str(record.get("template", record.get("kind", ""))),
                           parse_references(record), str(record.get("task_category") or ""))


def _tier(record: dict, labels: tuple[str, ...]) -> str | None:
    tier = record.get("tier")
    if tier is not None and tier not in labels:
        raise ValueError(f"tier {tier!r} is not one of {list(labels)}")
    return tier


def parse_references(record: dict) -> tuple[str, ...]:
    """A line's gold answers (`references`: a list of non-empty strings), or () when it has none."""
    refs = record.get("references")
    if refs is None:
        return ()
    if not isinstance(refs, list) or not all(isinstance(r, str) and r.strip() for r in refs):
        raise ValueError("`references` must be a list of non-empty strings")
    return tuple(refs)


def read_lines(path: Path, parse: Callable[[object], LabelledRequest], what: str) -> Dataset:
    """Every line `parse` accepts; the others as "line N: why". No usable line at all is an error."""
    path = Path(path)
    if not path.is_file():
        raise SlmkitError(f"No data file at {path}.", hint=f"Pass a .jsonl (or .jsonl.gz) file of {what}.")
    items, skipped = [], []
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    items.append(parse(json.loads(line)))
                except (json.JSONDecodeError, ValueError) as exc:
                    skipped.append(f"line {number}: {exc}")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise SlmkitError(f"Cannot read {path}: {exc}") from None
    if not items:
        detail = f" ({skipped[0]})" if skipped else ""
        raise SlmkitError(f"{path} holds no usable {what}{detail}.")
    return Dataset(items, skipped)


def read_dataset(path: Path, labels: tuple[str, ...] = ("simple", "medium", "complex"),
                 require_labels: bool = True) -> Dataset:
    """Labelled requests from a JSONL file (.gz allowed); lines that do not parse, or (with
    `require_labels`) have no `tier` in `labels`, are skipped and listed in `Dataset.skipped`.
    Raises SlmkitError when the file is unreadable or holds no usable line.
    """
    def parse(record: object) -> LabelledRequest:
        item = parse_record(record, labels)
        if require_labels and item.tier is None:
            raise ValueError("no `tier` label")
        return item

    return read_lines(path, parse, "labelled requests" if require_labels else "requests")


def read_datasets(paths: list[Path], labels: tuple[str, ...] = ("simple", "medium", "complex")) -> Dataset:
    """Labelled requests of several files, in order; skipped lines are named "FILE line N: why"."""
    items, skipped = [], []
    for path in paths:
        dataset = read_dataset(path, labels)
        items.extend(dataset.items)
        skipped.extend(f"{Path(path).name} {problem}" for problem in dataset.skipped)
    return Dataset(items, skipped)
