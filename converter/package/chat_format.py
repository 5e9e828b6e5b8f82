"""Flatten a model's Jinja chat template into per-role prefix/suffix strings (`chat_format.json`).

Phones should not run a template engine. Rendering the template (runtime/chat_template.py, the
environment transformers uses) around marker messages recovers what it puts before and after each
role's content; the result is then checked by re-rendering conversations both ways — a template
that is not a plain concatenation is refused, never guessed.

Two things stay live on the phone instead of being frozen at packaging time:
- a system prompt for a template without a system role is folded into the first user turn
  (`system_as_user_prefix`, joined by SYSTEM_JOIN), as every slmkit runtime sends it;
- a date the template takes from `strftime_now` is a slot `⟦now:FORMAT⟧` in the strings, filled by
  each port from its clock with the C-locale strftime subset in DATE_DIRECTIVES (Llama 3.x's
  "Today Date: %d %b %Y").
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.chat_template import (DATE_DIRECTIVES, SYSTEM_JOIN, ChatTemplate, fill_dates, fold_system,
                                          load_chat_template)

MARK = {"system": "\u27e6SYSTEM\u27e7", "user": "\u27e6USER1\u27e7", "assistant": "\u27e6ASSISTANT\u27e7",
        "user2": "\u27e6USER2\u27e7"}
# The clock golden vectors are rendered at (ports render them with the same fields).
VECTOR_NOW = datetime(2026, 3, 7, 9, 5, 2)


def date_slot(fmt: str) -> str:
    """The ⟦now:FMT⟧ slot the mobile ports fill with today's date in `fmt` (a strftime format).
    Raises SlmkitError when `fmt` uses a directive the ports' strftime subset (DATE_DIRECTIVES) lacks.
    """
    directives = re.findall(r"%(.)", fmt.replace("%%", ""))
    unknown = sorted({d for d in directives if d not in DATE_DIRECTIVES})
    if unknown:
        raise SlmkitError(f"The chat template formats the date with %{', %'.join(unknown)}; the mobile runtime "
                          f"formats only %{', %'.join(sorted(DATE_DIRECTIVES - {'%'}))}.")
    return f"\u27e6now:{fmt}\u27e7"


def render_flat(fmt: dict[str, Any], messages: list[dict[str, str]], now: datetime | None = None) -> str:
    """What the Kotlin/Swift ChatFormat.render produce (kept in step with them): the text before the
    first message, between each pair of consecutive roles, and after the last (generation prompt),
    with date slots filled from `now` (default: the local clock)."""
    now = now or datetime.now()
    if fmt["system_as_user_prefix"]:
        messages = fold_system(messages)
    out, previous = [], None
    for m in messages:
        out.append(fill_dates(fmt["start"][m["role"]] if previous is None else fmt["between"][f"{previous}>{m['role']}"], now))
        out.append(m["content"])
        previous = m["role"]
    if previous is not None:
        out.append(fill_dates(fmt["end"][previous], now))
    return "".join(out)


def _between(text: str, start_mark: str | None, end_mark: str | None) -> str:
    start = 0 if start_mark is None else text.index(start_mark) + len(start_mark)
    end = len(text) if end_mark is None else text.index(end_mark, start)
    return text[start:end]


PROBES = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {there}!"},
           {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"}],
          [{"role": "user", "content": "Capital of France?"}]]


def flatten(template: ChatTemplate) -> dict[str, Any]:
    """chat_format.json's content for `template`; SlmkitError when it is not a plain concatenation."""
    slotted = template.with_strftime(date_slot)
    u1, a, u2, s = MARK["user"], MARK["assistant"], MARK["user2"], MARK["system"]
    chat = [{"role": "user", "content": u1}, {"role": "assistant", "content": a}, {"role": "user", "content": u2}]
    plain = slotted.render(chat)
    with_system = slotted.render_chat([{"role": "system", "content": s}, *chat])
    fmt: dict[str, Any] = {
        "start": {"user": _between(plain, None, u1)},
        "between": {"user>assistant": _between(plain, u1, a), "assistant>user": _between(plain, a, u2)},
        "end": {"user": _between(plain, u2, None)},
        "system_as_user_prefix": s + SYSTEM_JOIN + u1 in with_system,
    }
    if not fmt["system_as_user_prefix"]:
        if s not in with_system:
            raise SlmkitError("The chat template drops the system prompt; the mobile runtime cannot reproduce it.")
        fmt["start"]["system"] = _between(with_system, None, s)
        fmt["between"]["system>user"] = _between(with_system, s, u1)
    end_of_turn = next((line.strip() for line in fmt["between"]["assistant>user"].splitlines() if line.strip()), "")
    eos = template.special_tokens.get("eos_token", "")
    fmt["stops"] = [t for t in dict.fromkeys([end_of_turn, eos]) if t]
    dated = template.with_strftime(VECTOR_NOW.strftime)
    for probe in PROBES:
        if render_flat(fmt, probe, VECTOR_NOW) != dated.render_chat(probe):
            raise SlmkitError("The flattened chat template does not reproduce the original; refusing to guess.")
    return fmt


VECTOR_CONVERSATIONS = {
    "one user turn": [{"role": "user", "content": "Capital of France?"}],
    "system then user": [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Capital of France?"}],
    "multi-turn with braces and unicode": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Résumé {user} of «this» 🚀"},
        {"role": "assistant", "content": "Done."}, {"role": "user", "content": "And again?"}],
}


def _template(tokenizer_dir: Path) -> ChatTemplate:
    template = load_chat_template(tokenizer_dir)
    if template is None:
        raise SlmkitError(f"{tokenizer_dir} has no chat template.", hint="Package an instruction-tuned model.")
    return template


def check_chat_format(tokenizer_dir: Path) -> None:
    """Refuse, before any conversion, a model whose chat template the apps cannot reproduce."""
    flatten(_template(tokenizer_dir))


def write_chat_format(tokenizer_dir: Path, path: Path, vectors: Path) -> dict[str, Any]:
    """chat_format.json, plus golden vectors pairing it with the Jinja template's own rendering
    (at VECTOR_NOW, given in each row as "now" fields for the ports' clocks)."""
    template = _template(tokenizer_dir)
    fmt = flatten(template)
    dated = template.with_strftime(VECTOR_NOW.strftime)
    now = {"year": VECTOR_NOW.year, "month": VECTOR_NOW.month, "day": VECTOR_NOW.day, "hour": VECTOR_NOW.hour,
           "minute": VECTOR_NOW.minute, "second": VECTOR_NOW.second}
    path.write_text(json.dumps(fmt, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = [{"name": name, "format": fmt, "messages": messages, "now": now, "expected": dated.render_chat(messages)}
            for name, messages in VECTOR_CONVERSATIONS.items()]
    vectors.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return fmt
