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
    return cache_dir() / "models"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
