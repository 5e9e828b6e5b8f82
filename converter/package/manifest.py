"""The bundle manifest (every file with sha256 and size, versions, models with licences, parity,
RAM per device) and `slmkit verify`, which checks a bundle against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.checksums import sha256_file

BUNDLE_MANIFEST = "manifest.json"
FORMAT = "slmkit-bundle/1"


def file_table(folder: Path) -> list[dict[str, Any]]:
    return [{"path": str(p.relative_to(folder)), "sha256": sha256_file(p), "size": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and str(p.relative_to(folder)) != BUNDLE_MANIFEST]


def write_bundle_manifest(folder: Path, fields: dict[str, Any]) -> dict[str, Any]:
    manifest = {"format": FORMAT, **fields, "files": file_table(folder)}
    (folder / BUNDLE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify_bundle(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """(manifest, problems): every listed file present with its size and sha256, nothing unlisted."""
    path = Path(folder) / BUNDLE_MANIFEST
    if not path.is_file():
        raise SlmkitError(f"{folder} is not a bundle: it has no {BUNDLE_MANIFEST}.", hint="Pass a folder written by `slmkit package`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SlmkitError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), list):
        raise SlmkitError(f"{path} is not a bundle manifest (format is not {FORMAT}).")
    problems, listed = [], set()
    for entry in manifest["files"]:
        relative = entry["path"]
        listed.add(relative)
        file = Path(folder) / relative
        if not file.is_file():
            problems.append(f"{relative}: missing")
        elif file.stat().st_size != entry["size"]:
            problems.append(f"{relative}: size {file.stat().st_size} bytes, manifest says {entry['size']}")
        elif sha256_file(file) != entry["sha256"]:
            problems.append(f"{relative}: does not match its sha256 (modified)")
    for file in sorted(Path(folder).rglob("*")):
        relative = str(file.relative_to(folder))
        if file.is_file() and relative != BUNDLE_MANIFEST and relative not in listed:
            problems.append(f"{relative}: not in the manifest (added after packaging)")
    return manifest, problems
