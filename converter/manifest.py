"""manifest.json: what an artifact folder holds, where it came from, what built it, and its parity.

`sha256` covers every file except the manifest itself and parity.json (written later by parity).
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from slmkit.converter import __version__
from slmkit.runtime.checksums import sha256_file

MANIFEST = "manifest.json"
PARITY = "parity.json"
_UNHASHED = {MANIFEST, PARITY}
LIBRARIES = ("torch", "transformers", "gguf", "llama_cpp_python", "numpy", "safetensors", "tokenizers", "sentencepiece")


def library_versions() -> dict[str, str]:
    versions = {"slmkit": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hash_folder(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and str(path.relative_to(folder)) not in _UNHASHED
    }


def write_manifest(folder: Path, fields: dict[str, Any]) -> dict[str, Any]:
    manifest = {
        "format": "slmkit-artifact/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
        "versions": library_versions(),
        "files": hash_folder(folder),
        "parity": None,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def record_parity(folder: Path, summary: dict[str, Any]) -> None:
    """Store the parity verdict in the manifest (atomically: write, then rename)."""
    manifest = read_manifest(folder)
    manifest["parity"] = summary
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)
