"""`slmkit convert`: checkpoint -> target artifact folder with tokenizer files and manifest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.converter.preflight import require_memory
from slmkit.converter.staging import require_free_space, staged_output
from slmkit.converter.targets.base import ConvertOptions, check_quant
from slmkit.converter.targets.registry import get_target
from slmkit.converter.tokenizer_files import ARTIFACT_TOKENIZER_FILES, check_chat_template
from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.manifest import ARTIFACT, PARITY, library_versions, write_manifest
from slmkit.runtime.progress import ProgressCallback, Steps


def default_output(ckpt: Checkpoint, target: str, quant: str) -> Path:
    """out/<recipe or folder name>-<target>-<quant>, relative to the working directory."""
    stem = ckpt.recipe.name if ckpt.recipe else ckpt.path.name
    return Path("out") / f"{stem}-{target}-{quant}"


def source_record(model: str, ckpt: Checkpoint) -> dict[str, Any]:
    """Where the weights came from, precisely enough to reproduce or audit the artifact."""
    record = {"model": model, **ckpt.source}
    if ckpt.source.get("kind") == "local":
        record["safetensors_sha256"] = {f.name: sha256_file(f) for f in ckpt.safetensors_files()}
    return record


def convert(model: str, ckpt: Checkpoint, target_name: str, quant: str | None, output: Path | None,
            *, force: bool, progress: ProgressCallback | None = None, options: ConvertOptions | None = None) -> Path:
    """`slmkit convert`: the checkpoint as `target_name` at `quant` (default: the recipe's, else the
    target's) in `output` (default: `default_output`), with its tokenizer files and manifest.json.

    Options, the chat template, free disk (the target's estimate_bytes) and memory (estimate_memory)
    are checked before any work; the artifact is written to a staging folder renamed at the end, so a
    failure leaves nothing behind. Returns the artifact folder. Raises SlmkitError for a bad option,
    an existing `output` without `force`, too little disk or memory, or a failed conversion.
    """
    target = get_target(target_name)
    options = options or ConvertOptions()
    quant = quant or (ckpt.recipe.default_quant.get(target_name) if ckpt.recipe else None) or target.default_quant
    check_quant(target, quant)
    target.check_supported(ckpt, quant, options)
    check_chat_template(ckpt.path)
    output = output or default_output(ckpt, target_name, quant)
    if output.exists() and not force:
        raise SlmkitError(f"{output} already exists.", hint="Pass --force to replace it, or choose another --output.")
    output.resolve().parent.mkdir(parents=True, exist_ok=True)
    require_free_space(output.resolve().parent, target.estimate_bytes(ckpt, quant), f"{target_name}/{quant}")
    require_memory(target.estimate_memory(ckpt, quant, options), f"converting to {target_name}/{quant}",
                   hint="Close other programs, or convert on a machine with more memory; the GGUF target needs "
                        "the least (about 8 bytes per element of the largest tensor).")
    with staged_output(output, force=force) as staging:
        tokenizer_dir = staging / target.tokenizer_dir
        tokenizer_dir.mkdir(exist_ok=True)
        for name in ARTIFACT_TOKENIZER_FILES:  # first, so a target can state what its runtime needs in them
            if (ckpt.path / name).is_file():
                shutil.copy2(ckpt.path / name, tokenizer_dir / name)
        result = target.convert(ckpt, quant, staging, Steps(progress), options)
        write_manifest(staging, ARTIFACT, {
            "target": target_name,
            "quant": quant,
            "model_file": result.model_file,
            "recipe": ckpt.recipe.name if ckpt.recipe else None,
            "license": ckpt.recipe.license if ckpt.recipe else None,
            "architecture": ckpt.model_type,
            "notes": ckpt.notes,
            "source": source_record(model, ckpt),
            "conversion": result.details,
            "versions": library_versions(),
            "parity": None,
        }, unlisted=frozenset({PARITY}))
    return output.resolve()
