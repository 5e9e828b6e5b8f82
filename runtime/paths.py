"""Where slmkit keeps what it builds for the user (dequantized checkpoints, assembled GGUFs)."""

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
