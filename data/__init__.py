"""slmkit's own labelled routing requests, installed as package data (`slmkit.data`).

`routing/train.jsonl.gz` (public requests), `routing/authored.jsonl.gz` (CC0, written for slmkit) and
`routing/conversations.jsonl`; sources and licences in routing/README.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from slmkit.runtime.errors import SlmkitError


def routing_file(name: str) -> Path:
    """The installed path of `routing/<name>` (e.g. "train.jsonl.gz").

    Raises: SlmkitError when the file is not in this installation (a broken wheel must not
    silently yield empty golden vectors).
    """
    path = Path(str(resources.files(__name__) / "routing" / name))
    if not path.is_file():
        raise SlmkitError(f"slmkit's routing data {name!r} is missing from this installation ({path}).",
                          hint="Reinstall slmkit; the wheel ships data/routing as package data.")
    return path
