"""Write outputs all-or-nothing: build in a hidden sibling folder, rename into place at the end.

An error, a full disk, Ctrl-C or SIGTERM leaves the previous output (if any) untouched and no partial
one. Signals do not rely on KeyboardInterrupt unwinding (libraries such as torch.jit and coremltools
can swallow it mid-conversion): `abandon_active` removes every open staging folder directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slmkit.converter.errors import SlmkitError

GB = 1024**3

_active: dict[Path, Path] = {}  # staging folder -> the output it will become


@contextmanager
def staged_output(output: Path, *, force: bool) -> Iterator[Path]:
    """A fresh staging folder beside `output`; on success it replaces `output` by rename (a previous
    `output` is moved aside first, then removed), on any error it is removed, so `output` is never
    half-written. Raises SlmkitError when `output` exists and not `force`.
    """
    output = output.resolve()
    if output.exists() and not force:
        raise SlmkitError(f"{output} already exists.", hint="Pass --force to replace it, or choose another --output.")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    _active[staging] = output
    try:
        yield staging
        if output.exists():
            previous = _previous(output)
            output.rename(previous)
            staging.rename(output)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            staging.rename(output)
    finally:
        _active.pop(staging, None)
        shutil.rmtree(staging, ignore_errors=True)


def _previous(output: Path) -> Path:
    return output.parent / f".{output.name}.old-{os.getpid()}"


def abandon_active() -> None:
    """Remove every open staging folder and put back an output caught mid-swap (for signal handlers)."""
    for staging, output in list(_active.items()):
        previous = _previous(output)
        if previous.exists() and not output.exists():
            previous.rename(output)
        shutil.rmtree(staging, ignore_errors=True)
        _active.pop(staging, None)


def require_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Refuse to start a job that cannot finish for lack of disk (checked before writing)."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise SlmkitError(
            f"Not enough disk space for {what}: it needs about {needed_bytes / GB:.2f} GB, "
            f"{free / GB:.2f} GB are free in {folder}.",
            hint="Free some space or choose another --output.",
        )
