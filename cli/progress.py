"""The one rich progress display every long command uses (stderr, so stdout stays machine-readable)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from slmkit.runtime.progress import ProgressCallback, ProgressEvent

_console = Console(stderr=True)


class _Amount(ProgressColumn):
    """A row's amount in its own unit (the task field `unit`): transfer sizes for "bytes" (conversion),
    "N/M" for anything else (prompts, requests, folds), so one display mixes both."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._items = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        return (self._bytes if task.fields.get("unit") == "bytes" else self._items).render(task)


class _Remaining(ProgressColumn):
    """Time left for counted items; none for bytes (quantizing and writing run at very different speeds)."""

    def __init__(self) -> None:
        super().__init__()
        self._remaining = TimeRemainingColumn()

    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("unit") == "bytes" else self._remaining.render(task)


def progress() -> Progress:
    """The display; a row counting bytes is added with `add_task(..., unit="bytes")`, others count items."""
    # The description gets what the other columns leave (about 52 characters: spinner, a 16-cell bar, an amount
    # up to "999.9/999.9 MB", two clocks) and is cut with "…", never wrapped: on an 80-column terminal the bar,
    # the amount and the times stay readable.
    description = TextColumn("{task.description}", table_column=Column(
        no_wrap=True, overflow="ellipsis", max_width=max(16, _console.width - 52)))
    return Progress(SpinnerColumn(), description, BarColumn(bar_width=16), _Amount(), TimeElapsedColumn(), _Remaining(),
                    console=_console, transient=False)


@contextmanager
def progress_callback() -> Iterator[ProgressCallback]:
    """A ProgressCallback (runtime/progress.py) drawing each step as a row of the display above, in the
    step's own unit, while the block runs; a transient step's row goes when it is done."""
    rows: dict[int, object] = {}
    with progress() as display:
        def report(event: ProgressEvent) -> None:
            if event.step not in rows:
                rows[event.step] = display.add_task(event.description, total=event.total, unit=event.unit)
            if event.done and event.transient:
                display.remove_task(rows[event.step])
                return
            finished_unknown = event.done and event.total is None  # a spinner that ended: draw it full
            display.update(rows[event.step], description=event.description,
                           completed=1 if finished_unknown else event.completed,
                           total=1 if finished_unknown else event.total)

        yield report
