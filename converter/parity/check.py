"""One parity run of an artifact against its PyTorch source: what `slmkit parity` and `slmkit package` share."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.progress import ProgressCallback, Steps


def check_artifact(artifact: Path, *, reference: str | None = None, extra_prompts: Path | None = None, steps: int = 16,
                   threads: int | None = None, engine: str | None = None,
                   progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run the prompts through both engines, write parity.json into the artifact and record the
    verdict in its manifest; returns the full report (`passed` is the verdict). Each stage reports
    through `progress` (runtime/progress.py). Raises SlmkitError when the artifact, its source or
    the engine cannot be opened, for `steps` < 1, or when the run would not fit this machine's memory
    or disk."""
    from slmkit.converter.models.resolve import resolve
    from slmkit.converter.parity import report as reports
    from slmkit.converter.parity.prompts import builtin_prompts, load_prompts
    from slmkit.converter.parity.run import open_artifact, prepare, reference_pass, run_parity
    from slmkit.converter.parity.torch_runner import TorchRunner
    from slmkit.converter.targets.base import check_engine
    from slmkit.converter.targets.registry import get_target
    from slmkit.runtime.manifest import ARTIFACT, PARITY, update_manifest

    if steps < 1:
        raise SlmkitError(f"steps must be at least 1 (greedy decode steps per prompt), got {steps}.")
    if not Path(artifact).is_dir():
        raise SlmkitError(f"{artifact} is not a folder.", hint="Pass the folder written by `slmkit convert`.")
    manifest = open_artifact(artifact)
    art_target = get_target(manifest["target"])
    engine = check_engine(art_target, engine)
    prompt_set = builtin_prompts() + (load_prompts(extra_prompts) if extra_prompts else [])
    reference = reference or manifest.get("source", {}).get("model")
    if not reference:
        raise SlmkitError("The manifest does not name the source model.", hint="Pass --reference MODEL.")
    ckpt = resolve(reference)
    stages = Steps(progress)
    loading = stages.start(f"Loading the reference ({reference})", transient=True)
    ref_runner = TorchRunner(ckpt, threads=threads)
    prepared = prepare(ref_runner, prompt_set)
    limits = [int(ckpt.text_config.get("max_position_embeddings") or 0) or None,
              art_target.context_limit(artifact, manifest, engine)]
    prepared, skipped = fit_context(prepared, steps, min((x for x in limits if x), default=None), artifact.name)
    n_ctx = max(len(p.ids) for p in prepared) + steps + 1
    _preflight(ckpt, art_target, artifact, manifest, engine, prepared, steps, n_ctx)
    # 1. The reference alone: its logits go to disk, then it is released.
    ref_runner.load()
    loading.finish()
    with tempfile.TemporaryDirectory(prefix="slmkit-parity-") as folder:
        task = stages.start(f"Reference (PyTorch) on {len(prompt_set)} prompts", total=len(prompt_set))
        runs = reference_pass(ref_runner, prepared, steps, Path(folder), on_prompt=lambda _p: task.advance())
        ref_runner.close()
        # 2. The artifact's engine, scored prompt by prompt against the stored logits.
        loading = stages.start(f"Loading the artifact ({engine})", transient=True)
        art_runner = art_target.runner(artifact, manifest, threads, n_ctx, engine)
        loading.finish()
        task = stages.start(f"Parity {Path(artifact).name}", total=len(prompt_set))
        try:
            result = run_parity(artifact, ref_runner, runs, art_runner, manifest, steps,
                                on_prompt=lambda _p: task.advance())
        finally:
            art_runner.close()
    result["skipped_prompts"] = skipped
    reports.write_json(result, Path(artifact) / PARITY)
    update_manifest(artifact, ARTIFACT, {"parity": {"passed": result["passed"], "runner": result["runner"], "metrics": {
        k: result["metrics"][k] for k in ("top1_agreement", "kl_mean", "kl_max", "greedy_match", "tokenizer_match")}}})
    return result


def fit_context(prepared: list[Any], steps: int, limit: int | None, name: str) -> tuple[list[Any], list[str]]:
    """The prompts whose ids plus `steps` decoded tokens fit `limit`; built-in prompts that do not
    are skipped with a note (a model with a short context), a user's --prompts line is refused."""
    if limit is None:
        return prepared, []
    kept, skipped = [], []
    for p in prepared:
        need = len(p.ids) + steps + 1
        if need <= limit:
            kept.append(p)
        elif p.prompt.builtin:
            skipped.append(f"built-in prompt '{p.prompt.id}' needs {need} tokens; "
                           f"{name} holds {limit}")
        else:
            raise SlmkitError(f"Prompt '{p.prompt.id}' needs {need} tokens ({len(p.ids)} + {steps} decoded + 1); "
                              f"{name} holds {limit}.", hint="Shorten that prompt in --prompts, or lower --steps.")
    if not kept:
        raise SlmkitError(f"No parity prompt fits with {steps} decode steps: {name} holds {limit} tokens.",
                          hint="Lower --steps, or give the artifact a longer context (Core ML: convert with a "
                               "larger --cache-length).")
    return kept, skipped


def _preflight(ckpt: Any, target: Any, artifact: Path, manifest: dict[str, Any], engine: str, prepared: list[Any],
               steps: int, n_ctx: int) -> None:
    """Refuse a run that cannot fit in memory or in the temporary folder, before loading anything."""
    from slmkit.converter.preflight import WeightStats, parity_disk, reference_memory, require_memory
    from slmkit.converter.staging import require_free_space

    stats = WeightStats.of(ckpt)
    vocab = int(ckpt.text_config.get("vocab_size") or 0)
    layers = int(ckpt.text_config.get("num_hidden_layers") or 1)
    longest = max(len(p.ids) for p in prepared)
    hint = ("Close other programs, run fewer or shorter --prompts, or run parity on a machine with more memory "
            "(the reference and the engine run one after the other).")
    require_memory(reference_memory(stats, longest, vocab, layers), "the parity reference (PyTorch)", hint)
    require_memory(target.engine_memory(artifact, manifest, engine, n_ctx, vocab), f"running the artifact with {engine}",
                   hint)
    positions = sum(len(p.ids) for p in prepared)
    require_free_space(Path(tempfile.gettempdir()), parity_disk(positions, len(prepared), steps, vocab),
                       "the reference logits of this parity run (set TMPDIR to use another folder)")

