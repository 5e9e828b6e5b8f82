"""Prompt rendering, pinned by golden vectors: every port must produce these exact strings."""

from __future__ import annotations

import re

from slmkit.runtime.spec import Truncation


def truncate(text: str, head: int, tail: int = 0) -> str:
    """The first `head` characters, plus the last `tail` ones when the text is longer than both.

    Characters are Unicode code points (Python str, Kotlin/Swift must count code points too).
    """
    if len(text) <= head + tail:
        return text
    return text[:head] + (" … " + text[len(text) - tail:] if tail else "")


def router_input(system: str, user: str, truncation: Truncation) -> tuple[str, str]:
    """The parts of a request the router reads."""
    return (truncate(system, truncation.system_chars),
            truncate(user, truncation.user_chars, truncation.user_tail_chars))


def fill(template: str, **values: str) -> str:
    """Replace {name} placeholders in one pass over the template.

    Not str.format: user text holds braces, and a value containing "{user}" must stay literal.
    Unknown placeholders are left as written.
    """
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def render_router_prompt(template: str, system: str, user: str, truncation: Truncation) -> str:
    system_part, user_part = router_input(system, user, truncation)
    return fill(template, system=system_part, user=user_part)


def render_rating_prompt(template: str, question: str, answer: str) -> str:
    return fill(template, question=question, answer=answer)
