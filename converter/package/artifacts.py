"""Converted artifacts for bundles: built once into the cache, reused while the source, the
slmkit version and every file hash still match, and parity-checked before they ship."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmkit.converter import __version__
from slmkit.converter.convert import convert, source_record
from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.runtime.manifest import ARTIFACT, PARITY, file_entries, read_manifest
from slmkit.runtime.paths import cache_dir
from slmkit.runtime.progress import ProgressCallback, Steps


def artifact_cache(ckpt: Checkpoint, target: str, quant: str) -> Path:
    """Where `slmkit package` keeps converted artifacts for reuse: <cache>/artifacts/<name>-<target>-<quant>."""
    stem = ckpt.recipe.name if ckpt.recipe else ckpt.path.name
    return cache_dir() / "artifacts" / f"{stem}-{target}-{quant}"


def reusable(folder: Path, model: str, ckpt: Checkpoint, target: str, quant: str) -> bool:
    """Same source (including weight hashes for local folders), same slmkit, files untouched."""
    try:
        manifest = read_manifest(folder, ARTIFACT)
    except (OSError, SlmkitError):  # unreadable, or written by an older slmkit (another format)
        return False
    return (manifest.get("target") == target and manifest.get("quant") == quant
            and manifest.get("versions", {}).get("slmkit") == __version__
            and manifest.get("source") == source_record(model, ckpt)
            and manifest["files"] == file_entries(folder, frozenset({PARITY})))


def ensure_artifact(model: str, ckpt: Checkpoint, target: str, quant: str,
                    progress: ProgressCallback | None) -> tuple[Path, bool]:
    """(folder, reused?): the cached artifact when still valid (said as a finished progress step), else a fresh
    conversion into the cache."""
    folder = artifact_cache(ckpt, target, quant)
    if folder.is_dir() and reusable(folder, model, ckpt, target, quant):
        Steps(progress).start(f"Reusing the cached {target} {quant} artifact ({folder})").finish()
        return folder, True
    return convert(model, ckpt, target, quant, folder, force=True, progress=progress), False


def parity_verdict(folder: Path, progress: ProgressCallback | None, allow_failure: bool) -> dict[str, Any]:
    """Run parity unless the manifest already records it; refuse a failing artifact unless allowed."""
    from slmkit.converter.parity.check import check_artifact

    manifest = read_manifest(folder, ARTIFACT)
    summary = manifest.get("parity")
    if summary is None:
        result = check_artifact(folder, progress=progress)
        summary = read_manifest(folder, ARTIFACT)["parity"]
        summary["failures"] = [k for k, v in result.get("checks", {}).items() if not v.get("passed", True)]
    if not summary["passed"] and not allow_failure:
        raise SlmkitError(f"{folder.name} fails parity against its PyTorch source "
                          f"(top-1 {summary['metrics']['top1_agreement']:.3f}, KL mean {summary['metrics']['kl_mean']:.4f}); "
                          "it is not packaged.",
                          hint=f"See {folder / 'parity.json'}. Pass --allow-parity-failure to package it anyway "
                               "(recorded in the bundle manifest).")
    return summary
