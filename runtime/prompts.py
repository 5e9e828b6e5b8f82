"""Prompt rendering, pinned by golden vectors: every port must produce these exact strings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slmkit.runtime.spec import Truncation

if TYPE_CHECKING:
    from slmkit.runtime.request import Request


def truncate(text: str, head: int, tail: int = 0) -> str:
    """The first `head` characters, plus the last `tail` ones when the text is longer than both.

    Characters are Unicode code points (Python str, Kotlin/Swift must count code points too).
    """
    if len(text) <= head + tail:
        return text
    return text[:head] + (" … " + text[len(text) - tail:] if tail else "")


def router_input(system: str, user: str, truncation: Truncation, earlier: Sequence[str] = ()) -> tuple[str, str]:
    """The parts of a request the router reads: the system prompt cut to `system_chars`; the user
    part is each earlier user message cut to `history_chars` (oldest first), then the last one
    cut to `user_chars` (+ `user_tail_chars`), one per line."""
    parts = [truncate(text, truncation.history_chars) for text in earlier]
    parts.append(truncate(user, truncation.user_chars, truncation.user_tail_chars))
    return truncate(system, truncation.system_chars), "\n".join(parts)


def request_router_input(request: Request, truncation: Truncation) -> tuple[str, str]:
    """`router_input` of a request, with the earlier user turns `truncation.history_turns` asks for."""
    return router_input(request.system, request.user, truncation, request.earlier_user_turns(truncation.history_turns))


def conversation_user(request: Request, truncation: Truncation) -> str:
    """The whole user text the router reads (the earlier user turns it reads, then the last), uncut:
    its length is a feature (a long document pasted two turns ago is still in the context)."""
    return "\n".join([*request.earlier_user_turns(truncation.history_turns), request.user])


def fill(template: str, **values: str) -> str:
    """Replace {name} placeholders in one pass over the template.

    Not str.format: user text holds braces, and a value containing "{user}" must stay literal.
    Unknown placeholders are left as written.
    """
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def render_router_prompt(template: str, system: str, user: str, truncation: Truncation,
                         earlier: Sequence[str] = ()) -> str:
    """The router's prompt template filled with the truncated system prompt, request and earlier turns."""
    system_part, user_part = router_input(system, user, truncation, earlier)
    return fill(template, system=system_part, user=user_part)


def render_rating_prompt(template: str, question: str, answer: str) -> str:
    """The confidence check's rating prompt filled with the question and the tier's answer."""
    return fill(template, question=question, answer=answer)
