"""Where slmkit keeps what it builds for the user (dequantized checkpoints, assembled GGUFs), and how
it writes a file so a reader never sees half of it."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$SLMKIT_CACHE`, else `$XDG_CACHE_HOME/slmkit`, else `~/.cache/slmkit`."""
    if env := os.environ.get("SLMKIT_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "slmkit"


def models_dir() -> Path:
    """Where `slmkit models pull` writes checkpoints: <cache_dir>/models."""
    return cache_dir() / "models"


def unwritable_reason(path: Path, *, folder: bool) -> str | None:
    """Why `path` (a file, or a `folder` to create) cannot be written, or None when it can: checked
    before any work, without creating anything (the nearest existing ancestor must be a writable folder)."""
    path = path.expanduser()
    if path.exists():
        if folder and not path.is_dir():
            return f"{path} is a file, not a folder"
        if not folder and path.is_dir():
            return f"{path} is a folder, not a file"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
