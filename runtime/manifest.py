"""manifest.json: the one format slmkit writes beside what it builds, and reads back with checks.

Two kinds share it: an artifact folder (`slmkit convert`, format ARTIFACT) and a bundle (`slmkit
package`, format BUNDLE). Each lists every file it covers as {path, sha256, size}. Reading validates
the whole manifest first (pydantic): a path must be relative, inside its folder (no `..`, no absolute
path, no backslash) and listed once; a wrong type or a missing key is one SlmkitError naming the
file and the field, never a traceback. Checking the files then refuses symlinks (a link can lead out
of the folder) and reports anything missing, resized, modified or, for bundles, added.

A manifest proves integrity, not authorship: anyone who can change a file can rewrite its manifest.
"""

from __future__ import annotations

import json
import os
import re
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.validation import RelativePath, validated

MANIFEST = "manifest.json"
PARITY = "parity.json"  # written into an artifact by `slmkit parity`, after its manifest
# Detached signatures of the manifest (ssh-keygen -Y sign, gpg --detach-sign --armor): written after
# it, by the user's own signing tool (docs/security.md), so never listed in it.
SIGNATURES = frozenset({"manifest.json.sig", "manifest.json.asc"})
ARTIFACT = "slmkit-artifact/2"   # /1 listed files as {path: sha256}; such artifacts are rebuilt
BUNDLE = "slmkit-bundle/1"
# The libraries whose versions an artifact or bundle records (the ones that change what gets built).
LIBRARIES = ("torch", "transformers", "gguf", "llama_cpp_python", "numpy", "safetensors", "tokenizers", "sentencepiece")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: RelativePath
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: StrictInt = Field(ge=0)  # "351" is not a size

    @field_validator("path")
    @classmethod
    def _not_the_manifest(cls, value: str) -> str:
        if value == MANIFEST:
            raise ValueError(f"{value!r} lists the manifest itself")
        return value


class Manifest(BaseModel):
    """The fields every manifest has; the rest (source, quant, models, RAM…) pass through."""

    model_config = ConfigDict(extra="allow")

    format: str
    files: list[FileEntry]
    versions: dict[str, str] = {}

    @field_validator("files")
    @classmethod
    def _once(cls, files: list[FileEntry]) -> list[FileEntry]:
        seen: set[str] = set()
        for entry in files:
            if entry.path in seen:
                raise ValueError(f"{entry.path!r} is listed twice")
            seen.add(entry.path)
        return files


class ArtifactManifest(Manifest):
    target: str
    quant: str
    model_file: RelativePath   # a listed file, or a listed folder (model.mlpackage/...)

    @model_validator(mode="after")
    def _model_file_listed(self) -> ArtifactManifest:
        if any(e.path == self.model_file for e in self.files):
            return self
        if self.model_file.endswith(".mlpackage") and any(e.path.startswith(self.model_file + "/") for e in self.files):
            return self   # a Core ML package is a folder
        raise ValueError(f"model_file {self.model_file!r} is not among the listed files")


class BundleManifest(Manifest):
    platform: str


_MODELS = {ARTIFACT: ArtifactManifest, BUNDLE: BundleManifest}
# What building or opening a bundle's app templates writes inside it (README: `swift test` in app/ios; the Gradle
# wrapper, Android Studio's local.properties/.idea, a gradle.properties the app's settings need, and the genai AAR
# fetch in app/android): not part of the bundle, not reported by verify (pinned downloads are checked instead).
BUNDLE_BUILD_OUTPUTS = ("app/ios/.build", "app/ios/.swiftpm", "app/android/.gradle", "app/android/build",
                        "app/android/.kotlin", "app/android/.idea", "app/android/local.properties",
                        "app/android/gradle.properties", "app/android/captures", "app/android/slmkit-routing/.cxx",
                        "app/android/slmkit-routing/build", "app/android/slmkit-routing/maven")
# Folders of the app templates that downloads land in (never packaged, so outside the manifest): each download
# pins its SHA-256 on the first fetch in a "<file name>.sha256" at the folder's top ("<sha256>  <file name>"),
# which `verify` checks (mobile_templates/android/slmkit-routing/fetch-onnxruntime-genai.sh writes them).
PINNED_DOWNLOADS = ("app/android/slmkit-routing/maven",)
_WHAT = {ARTIFACT: "an slmkit artifact (written by `slmkit convert`)", BUNDLE: "a bundle (written by `slmkit package`)"}


def library_versions() -> dict[str, str]:
    """slmkit, Python and every installed library of LIBRARIES, by version string."""
    versions = {"slmkit": metadata.version("slmkit"), "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def file_entries(folder: Path, unlisted: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """{path, sha256, size} of every file under `folder`, sorted, except the manifest and `unlisted`
    (files written after the manifest, such as parity.json)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != MANIFEST and relative not in unlisted:
            entries.append({"path": relative, "sha256": sha256_file(path), "size": path.stat().st_size})
    return entries


def _write(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)


def write_manifest(folder: Path, kind: str, fields: dict[str, Any],
                   unlisted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Write `folder`/manifest.json of format `kind` (ARTIFACT or BUNDLE) listing every file; atomic."""
    manifest = {"format": kind, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields,
                "files": file_entries(folder, unlisted)}
    _MODELS[kind].model_validate(manifest)  # what we write, we can read
    _write(folder, manifest)
    return manifest


def read_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """The validated manifest of `folder` as a dict.

    Raises: SlmkitError (no manifest, not JSON, another format, or the first invalid field by name).
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise SlmkitError(f"{folder} is not {_WHAT[kind]}: it has no {MANIFEST}.",
                          hint=f"Pass a folder written by `slmkit {'convert' if kind == ARTIFACT else 'package'}`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SlmkitError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != kind:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SlmkitError(f"{path} is not {_WHAT[kind]}: format {found!r}, expected {kind!r}.",
                          hint="Rebuild it with this slmkit." if isinstance(found, str) and found.startswith("slmkit-") else None)
    validated(_MODELS[kind], data, path)
    return data


def check_files(folder: Path, manifest: dict[str, Any], unlisted: frozenset[str] = frozenset(),
                report_added: bool = True, build_outputs: tuple[str, ...] = ()) -> list[str]:
    """Problems, one line each: a listed file that is a symlink, outside the folder, missing, of
    another size or hash; with `report_added`, a file present but not listed (besides `unlisted` and
    anything inside the folders `build_outputs` names: what building the app templates writes)."""
    root = Path(folder).resolve()
    problems, listed = [], set()
    for entry in manifest["files"]:
        relative = entry["path"]
        listed.add(relative)
        file = Path(folder) / relative
        if any(p.is_symlink() for p in [file, *file.parents][: len(PurePosixPath(relative).parts)]):
            problems.append(f"{relative}: is a symlink (not followed)")
        elif not file.resolve().is_relative_to(root):
            problems.append(f"{relative}: resolves outside {folder}")
        elif not file.is_file():
            problems.append(f"{relative}: missing")
        elif file.stat().st_size != entry["size"]:
            problems.append(f"{relative}: size {file.stat().st_size} bytes, manifest says {entry['size']}")
        elif sha256_file(file) != entry["sha256"]:
            problems.append(f"{relative}: does not match its sha256 (modified)")
    if report_added:
        for dirpath, dirnames, filenames in os.walk(folder):
            here = Path(dirpath).relative_to(folder).as_posix()
            dirnames[:] = [d for d in dirnames if (d if here == "." else f"{here}/{d}") not in build_outputs]
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                relative = path.relative_to(folder).as_posix()
                if relative in build_outputs:
                    continue
                if path.is_symlink() and relative not in listed:
                    problems.append(f"{relative}: is a symlink, not in the manifest")
                elif path.is_file() and relative not in listed | unlisted | {MANIFEST}:
                    problems.append(f"{relative}: not in the manifest (added after packaging)")
    return problems


def check_pinned_downloads(folder: Path, roots: tuple[str, ...] = PINNED_DOWNLOADS) -> list[str]:
    """Problems, one line each: a downloaded file under one of `roots` whose SHA-256 is not the one its pin
    file records, or a pin file that is not "<64 hex>  <name>". A root without pins has nothing to check."""
    problems = []
    for root in roots:
        base = Path(folder) / root
        for pin in sorted(base.glob("*.sha256")) if base.is_dir() and not base.is_symlink() else []:
            fields = pin.read_text(encoding="utf-8", errors="replace").split()
            where = pin.relative_to(folder).as_posix()
            if len(fields) != 2 or not re.fullmatch(r"[0-9a-f]{64}", fields[0]) or "/" in fields[1]:
                problems.append(f"{where}: not a pin (expected '<sha256>  <file name>')")
                continue
            for file in sorted(p for p in base.rglob(fields[1]) if p.is_file() and not p.is_symlink()):
                if sha256_file(file) != fields[0]:
                    problems.append(f"{file.relative_to(folder).as_posix()}: does not match the SHA-256 {where} pins")
    return problems


def update_manifest(folder: Path, kind: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set top-level fields (e.g. an artifact's parity verdict) in a valid manifest; atomic."""
    manifest = read_manifest(folder, kind) | changes
    _write(folder, manifest)
    return manifest
