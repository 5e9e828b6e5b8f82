"""Typer callbacks for the paths a command writes: a path that cannot be written is refused when the
command line is parsed, before any work (`runtime/paths.unwritable_reason`), with typer's one-line
"Invalid value for '--report'" error."""

from __future__ import annotations

from pathlib import Path

import typer
from slmkit.runtime.paths import unwritable_reason


def _check(value: Path | None, folder: bool) -> Path | None:
    if value is not None and (reason := unwritable_reason(value, folder=folder)):
        raise typer.BadParameter(f"cannot write {value}: {reason}.")
    return value


def writable_file(value: Path | None) -> Path | None:
    """A report or file the command writes."""
    return _check(value, folder=False)


def writable_folder(value: Path | None) -> Path | None:
    """A folder the command creates or fills."""
    return _check(value, folder=True)
