"""Parity prompts: the built-in set (chat, code, numbers, Unicode, long context) plus user files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from slmkit.converter.errors import SlmkitError


@dataclass
class Prompt:
    id: str
    text: str | None = None
    messages: list[dict[str, str]] | None = None
    builtin: bool = False  # slmkit's own set (skipped with a note when the model's context is shorter)


def _parse(line: str, origin: str, number: int) -> Prompt:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return Prompt(id=f"{origin}:{number}", text=line.rstrip("\n").replace("\\n", "\n"))
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise SlmkitError(f"{origin} line {number}: not valid JSON ({exc.msg}).") from None
    if "messages" in data:
        return Prompt(id=str(data.get("id", f"{origin}:{number}")), messages=data["messages"])
    text = data.get("text") or data.get("prompt")
    if not isinstance(text, str) or not text:
        raise SlmkitError(f"{origin} line {number}: needs a non-empty \"text\", \"prompt\" or \"messages\".")
    return Prompt(id=str(data.get("id", f"{origin}:{number}")), text=text)


def builtin_prompts() -> list[Prompt]:
    """The prompts shipped in prompts.jsonl, marked built-in (skipped, not refused, when too long)."""
    text = resources.files("slmkit.converter.parity").joinpath("prompts.jsonl").read_text(encoding="utf-8")
    prompts = [_parse(line, "builtin", n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for prompt in prompts:
        prompt.builtin = True
    return prompts


def load_prompts(path: Path) -> list[Prompt]:
    """JSONL ({"text"} / {"prompt"} / {"messages"}) or plain text, one prompt a line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SlmkitError(f"Cannot read prompts from {path}: {exc}") from None
    prompts = [_parse(line, path.name, n) for n, line in enumerate(lines, 1) if line.strip()]
    if not prompts:
        raise SlmkitError(f"{path} holds no prompts.")
    return prompts
