"""One parity run of an artifact against its PyTorch source: what `slmkit parity` and `slmkit package` share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError


def check_artifact(artifact: Path, *, reference: str | None = None, extra_prompts: Path | None = None, steps: int = 16,
                   threads: int | None = None, engine: str | None = None, progress: Any = None) -> dict[str, Any]:
    """Run the prompts through both engines, write parity.json into the artifact and record the
    verdict in its manifest; returns the full report (`passed` is the verdict)."""
    from slmkit.converter.manifest import PARITY, record_parity
    from slmkit.converter.models.resolve import resolve
    from slmkit.converter.parity import report as reports
    from slmkit.converter.parity.prompts import builtin_prompts, load_prompts
    from slmkit.converter.parity.run import context_needed, open_artifact, run_parity
    from slmkit.converter.parity.torch_runner import TorchRunner
    from slmkit.converter.targets.base import check_engine, get_target

    if not Path(artifact).is_dir():
        raise SlmkitError(f"{artifact} is not a folder.", hint="Pass the folder written by `slmkit convert`.")
    manifest = open_artifact(artifact)
    art_target = get_target(manifest["target"])
    engine = check_engine(art_target, engine)
    prompt_set = builtin_prompts() + (load_prompts(extra_prompts) if extra_prompts else [])
    reference = reference or manifest.get("source", {}).get("model")
    if not reference:
        raise SlmkitError("The manifest does not name the source model.", hint="Pass --reference MODEL.")
    loading = progress.add_task(f"Loading the reference ({reference}) and the artifact", total=None) if progress else None
    ckpt = resolve(reference)
    ref_runner = TorchRunner(ckpt.path, threads=threads)
    n_ctx = context_needed(ref_runner, prompt_set, steps)
    art_runner = art_target.runner(artifact, manifest, threads, n_ctx, engine)
    if progress:
        progress.remove_task(loading)
    task = progress.add_task(f"Parity {Path(artifact).name}", total=len(prompt_set)) if progress else None
    try:
        result = run_parity(artifact, ref_runner, art_runner, manifest, prompt_set, steps,
                            on_prompt=lambda _p: progress.advance(task) if progress else None)
    finally:
        art_runner.close()
    reports.write_json(result, Path(artifact) / PARITY)
    record_parity(artifact, {"passed": result["passed"], "runner": result["runner"], "metrics": {
        k: result["metrics"][k] for k in ("top1_agreement", "kl_mean", "kl_max", "greedy_match", "tokenizer_match")}})
    return result
