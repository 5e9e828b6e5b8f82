"""The one rich progress display every long command uses (stderr, so stdout stays machine-readable)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from slmkit.runtime.progress import ProgressCallback, ProgressEvent

_console = Console(stderr=True)


def progress(counting: str = "items"):
    """Counting "bytes" (conversion, with transfer sizes) or "items" (prompts, requests, folds, with time left)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    amount = [DownloadColumn()] if counting == "bytes" else [MofNCompleteColumn()]
    remaining = [] if counting == "bytes" else [TimeRemainingColumn()]
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), *amount, TimeElapsedColumn(),
                    *remaining, console=_console, transient=False)


@contextmanager
def progress_callback(counting: str = "items") -> Iterator[ProgressCallback]:
    """A ProgressCallback (runtime/progress.py) drawing each step as a row of the display above,
    while the block runs; a transient step's row goes when it is done."""
    rows: dict[int, object] = {}
    with progress(counting) as display:
        def report(event: ProgressEvent) -> None:
            if event.step not in rows:
                rows[event.step] = display.add_task(event.description, total=event.total)
            if event.done and event.transient:
                display.remove_task(rows[event.step])
                return
            finished_unknown = event.done and event.total is None  # a spinner that ended: draw it full
            display.update(rows[event.step], description=event.description,
                           completed=1 if finished_unknown else event.completed,
                           total=1 if finished_unknown else event.total)

        yield report
