"""Lines about the user's own data printed on the terminal: always as plain text (a file name, a field or
a record may hold `[...]`, which Rich would read as markup, hide, or fail on)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

SHOWN = 5  # skipped lines named on the terminal; the rest are counted


def print_problem(console: Console, label: str, text: str) -> None:
    """`label` (Rich markup, ours) then `text` (the user's data) shown literally."""
    console.print(f"{label} {escape(text)}", highlight=False)


def print_skipped(console: Console, examples: list[str], count: int | None = None, where: str | None = None) -> None:
    """The first SHOWN of `examples` ("FILE line N: why"), then how many more of `count` (default: all
    examples) were skipped, and `where` the full list is, if anywhere."""
    count = len(examples) if count is None else count
    for line in examples[:SHOWN]:
        print_problem(console, "[yellow]skipped[/]", line)
    more = count - min(SHOWN, len(examples))
    if more > 0:
        console.print(f"[yellow]skipped[/] {more:,} more line(s)" + (f"; {where}" if where else ""), highlight=False)
