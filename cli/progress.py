"""The one rich progress display every long command uses (stderr, so stdout stays machine-readable)."""

from __future__ import annotations

from rich.console import Console

_console = Console(stderr=True)


def progress(counting: str = "items"):
    """Counting "bytes" (conversion, with transfer sizes) or "items" (prompts, requests, folds, with time left)."""
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    amount = [DownloadColumn()] if counting == "bytes" else [MofNCompleteColumn()]
    remaining = [] if counting == "bytes" else [TimeRemainingColumn()]
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), *amount, TimeElapsedColumn(),
                    *remaining, console=_console, transient=False)
