"""Parity prompts: the built-in set (chat, code, numbers, Unicode, long context) plus user files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.validation import validated


@dataclass
class Prompt:
    id: str
    text: str | None = None
    messages: list[dict[str, str]] | None = None
    builtin: bool = False  # slmkit's own set (skipped with a note when the model's context is shorter)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


class PromptLine(BaseModel):
    """A JSONL prompt: an optional `id` and exactly one of `text`, `prompt` or `messages` (other
    fields, e.g. the built-in set's `kind`, are descriptive and ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    text: str | None = Field(None, min_length=1)
    prompt: str | None = Field(None, min_length=1)
    messages: list[_Message] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> PromptLine:
        if sum(x is not None for x in (self.text, self.prompt, self.messages)) != 1:
            raise ValueError('needs exactly one non-empty "text", "prompt" or "messages"')
        return self


def _parse(line: str, origin: str, number: int) -> Prompt:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return Prompt(id=f"{origin}:{number}", text=line.rstrip("\n").replace("\\n", "\n"))
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise SlmkitError(f"{origin} line {number}: not valid JSON ({exc.msg}).") from None
    entry = validated(PromptLine, data, f"{origin} line {number}")
    prompt_id = str(entry.id) if entry.id is not None else f"{origin}:{number}"
    if entry.messages is not None:
        return Prompt(id=prompt_id, messages=[m.model_dump() for m in entry.messages])
    return Prompt(id=prompt_id, text=entry.text or entry.prompt)


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
