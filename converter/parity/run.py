"""`slmkit parity`: hold an artifact to the PyTorch original on the same token ids."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.manifest import ARTIFACT, check_files, read_manifest
from slmkit.converter.parity.metrics import aggregate, judge, score_prompt
from slmkit.converter.parity.prompts import Prompt
from slmkit.converter.targets.registry import get_target_spec


def open_artifact(folder: Path) -> dict[str, Any]:
    """The artifact's validated manifest, after checking every listed file against its size and sha256.

    Raises: SlmkitError naming the folder and the first problem (runtime/manifest.py checks).
    """
    manifest = read_manifest(folder, ARTIFACT)
    problems = check_files(folder, manifest, report_added=False)
    if problems:
        raise SlmkitError(f"{folder}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                          hint="The artifact changed after `slmkit convert` wrote it; convert it again.")
    return manifest


def render(prompt: Prompt, reference: Any, has_template: bool) -> str:
    """The prompt's text: its own, its chat turns rendered by the reference's template, or (no
    template) "Role: content" lines ending in "Assistant:".
    """
    if prompt.text is not None:
        return prompt.text
    assert prompt.messages is not None
    if has_template:
        return reference.render_chat(prompt.messages)
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in prompt.messages) + "Assistant:"


# Conversations both sides' chat templates must render identically (a system turn included).
TEMPLATE_SAMPLES = [
    [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "2+2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
]


def tokenizer_problems(ref_info: Any, art_info: Any, ref: Any, art: Any) -> list[str]:
    """What the two tokenizers *do* differently: add BOS or not, which BOS they add, the EOS that
    ends generation, the chat prompt they render. A BOS id that neither side adds (Qwen 2.5 declares
    `bos_token_id` in config.json with `bos_token: null`) is not a difference."""
    problems = []
    fields = ("adds_bos", "eos_id", "bos_id") if ref_info.adds_bos and art_info.adds_bos else ("adds_bos", "eos_id")
    for field in fields:
        if getattr(ref_info, field) != getattr(art_info, field):
            problems.append(f"{field}: reference {getattr(ref_info, field)!r}, artifact {getattr(art_info, field)!r}")
    if (ref_info.chat_template or None) != (art_info.chat_template or None):
        problems.append("chat template differs from the reference's")
    elif ref_info.chat_template and hasattr(art, "render_chat"):
        for sample in TEMPLATE_SAMPLES:
            if ref.render_chat(sample) != art.render_chat(sample):
                problems.append(f"the rendered chat template differs from the reference's ({sample[0]['role']} first)")
    return problems


ADDED_TOKENS_PER_PROBE = 64


def added_token_problems(reference: Any, runner: Any) -> tuple[int, list[str]]:
    """Tokenize every added and special token of the reference tokenizer, in context ("Result: <t> 42"),
    on both sides: tokens added after training, or flagged differently, split differently in an
    engine that does not know them, which the built-in prompts may never show. Returns (tokens
    checked, problems); each problem names the first token whose ids differ."""
    tokens = reference.added_tokens()
    problems = []
    for start in range(0, len(tokens), ADDED_TOKENS_PER_PROBE):
        chunk = tokens[start:start + ADDED_TOKENS_PER_PROBE]
        text = "\n".join(f"Result: {t} 42" for t in chunk)
        if reference.tokenize(text) == runner.tokenize(text):
            continue
        for token in chunk:
            expected, got = reference.tokenize(f"Result: {token} 42"), runner.tokenize(f"Result: {token} 42")
            if expected != got:
                problems.append(f"added token {token!r}: reference ids {expected}, artifact {got}")
                break
    return len(tokens), problems


class NpyRows:
    """Rows of a 2-D .npy file, read from disk on each slice: no memory map, whose touched pages
    would count toward the process's RSS (a 900-token prompt over a 262K vocabulary is 0.9 GB)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = header(f)
            self.offset = f.tell()
        if fortran_order or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered 2-D array, got shape {shape}")
        self.shape: tuple[int, int] = shape
        self.dtype = np.dtype(dtype)

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise IndexError("NpyRows reads contiguous row ranges only")
        count = max(0, stop - start) * self.shape[1]
        with self.path.open("rb") as f:
            f.seek(self.offset + start * self.shape[1] * self.dtype.itemsize)
            return np.fromfile(f, dtype=self.dtype, count=count).reshape(-1, self.shape[1])


@dataclass
class ReferenceRun:
    """One prompt as the reference ran it; its logits live in .npy files, read a chunk at a time."""

    prompt: Prompt
    text: str
    ids: list[int]
    tokens: list[int]
    prefill_file: Path  # float32 [len(ids), vocab]
    steps_file: Path  # float32 [steps, vocab]
    chat: bool = False  # PreparedPrompt.chat

    def prefill(self) -> NpyRows:
        return NpyRows(self.prefill_file)

    def steps(self) -> np.ndarray:
        return np.load(self.steps_file)  # [steps, vocab]: small


@dataclass(frozen=True)
class PreparedPrompt:
    prompt: Prompt
    text: str  # rendered through the chat template when the model has one
    ids: list[int]  # the reference tokenizer's
    chat: bool = False  # rendered by the template: tokenized without adding BOS/EOS (Runner.tokenize)


def prepare(reference: Any, prompts: list[Prompt]) -> list[PreparedPrompt]:
    """Each prompt rendered and tokenized by the reference; a chat prompt is tokenized without
    adding BOS (the template writes it), as `apply_chat_template(tokenize=True)` does.
    """
    has_template = bool(reference.tokenizer_info().chat_template)
    prepared = []
    for prompt in prompts:
        text = render(prompt, reference, has_template)
        chat = has_template and prompt.messages is not None
        prepared.append(PreparedPrompt(prompt, text, reference.tokenize(text, special=not chat), chat))
    return prepared


def reference_pass(reference: Any, prompts: list[PreparedPrompt], steps: int, folder: Path,
                   on_prompt: Callable[[Prompt], None] | None = None) -> list[ReferenceRun]:
    """Run every prompt through the reference once, keeping its logits on disk (not in memory)."""
    runs = []
    for index, (prompt, text, ids, chat) in enumerate((p.prompt, p.text, p.ids, p.chat) for p in prompts):
        decode = reference.greedy(ids, steps)
        prefill_file, steps_file = folder / f"{index}-prefill.npy", folder / f"{index}-steps.npy"
        np.save(prefill_file, np.asarray(decode.prefill, dtype=np.float32))
        np.save(steps_file, np.asarray(decode.logits, dtype=np.float32))
        runs.append(ReferenceRun(prompt, text, ids, decode.tokens, prefill_file, steps_file, chat))
        del decode
        if on_prompt:
            on_prompt(prompt)
    return runs


def run_parity(artifact: Path, reference: Any, runs: list[ReferenceRun], runner: Any, manifest: dict[str, Any],
               steps: int, on_prompt: Callable[[Prompt], None] | None = None) -> dict[str, Any]:
    """Score the artifact's engine against the stored reference runs, one prompt at a time.

    `reference` only tokenizes and renders here (its model is released before the engine loads).
    """
    quant = manifest["quant"]
    thresholds = dict(get_target_spec(manifest["target"]).quant(quant).thresholds)
    started = time.perf_counter()
    ref_info, art_info = reference.tokenizer_info(), runner.tokenizer_info()
    problems = tokenizer_problems(ref_info, art_info, reference, runner)
    added_checked, added_problems = added_token_problems(reference, runner)
    problems += added_problems
    scores = []
    per_prompt = []
    for run in runs:
        ids, prompt = run.ids, run.prompt
        art_ids = runner.tokenize(run.text, special=not run.chat)
        if ids != art_ids:
            first = next((i for i, (a, b) in enumerate(zip(ids, art_ids)) if a != b), min(len(ids), len(art_ids)))
            problems.append(f"prompt '{prompt.id}': token ids differ from position {first} "
                            f"(reference {ids[first:first + 4]}, artifact {art_ids[first:first + 4]})")
        art_run = runner.greedy(ids, steps)
        score = score_prompt(prompt.id, ids, run.prefill(), art_run.prefill, (run.tokens, run.steps()),
                             (art_run.tokens, art_run.logits), tokens_match=ids == art_ids)
        del art_run
        scores.append(score)
        per_prompt.append({
            "id": prompt.id, "tokens": score.n_tokens, "kl_mean": float(score.kl.mean()),
            "kl_max": float(score.kl.max()), "top1_agreement": float(score.top1.mean()),
            "greedy_match": score.greedy_match, "tokens_match": score.tokens_match,
            "reference_greedy": score.ref_greedy, "artifact_greedy": score.art_greedy,
        })
        if on_prompt:
            on_prompt(prompt)
    metrics = aggregate(scores)
    checks = judge(metrics, thresholds, vocab_size=runs[0].prefill().shape[-1])
    if problems:
        checks["tokenizer_match"]["passed"] = False
    return {
        "passed": all(c["passed"] for c in checks.values()),
        "artifact": str(artifact),
        "target": manifest["target"],
        "quant": quant,
        "runner": runner.name,
        "runner_details": runner.details() if hasattr(runner, "details") else {},
        "reference_runner": reference.name,
        "reference": manifest.get("source", {}),
        "metrics": metrics,
        "thresholds": thresholds,
        "checks": checks,
        "tokenizer": {"problems": problems, "added_tokens_checked": added_checked, "artifact": vars(art_info) | {"chat_template": bool(art_info.chat_template)},
                      "reference": vars(ref_info) | {"chat_template": bool(ref_info.chat_template)}},
        "prompts": per_prompt,
        "greedy_steps": steps,
        "seconds": round(time.perf_counter() - started, 2),
    }
