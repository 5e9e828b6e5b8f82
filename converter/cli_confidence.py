"""`slmkit confidence eval`: every confidence method on a tier's answers to gold requests. No torch."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from slmkit.converter.cli_routing import BundleOption, SpecOption, spec_path
from slmkit.converter.progress import progress as progress_display
from slmkit.runtime.errors import SlmkitError

confidence_app = typer.Typer(help="Measure the confidence check that keeps or escalates on-device answers.",
                             no_args_is_help=True)
console = Console(stderr=True)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


@confidence_app.command("eval")
def evaluate_confidence(
    data: Annotated[Path, typer.Option(help='Gold requests, .jsonl(.gz): {"prompt", "context"?, "references": [...]}.')],
    report: Annotated[Path, typer.Option(help="Write every number here (JSON); the HTML report goes beside it.")],
    spec: SpecOption = None,
    bundle: BundleOption = None,
    tier: Annotated[Optional[str], typer.Option(help="Tier to answer (default: the first checked tier).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Answer length (default: the tier's max_tokens).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Evaluate the first N requests (after --sample).")] = None,
    sample: Annotated[Optional[int], typer.Option(help="Shuffle with this seed before --limit.")] = None,
) -> None:
    """Answer each gold request on a local tier and score every method: AUROC, kept share and
    accuracy at the spec's threshold, time, and per held-out source."""
    from slmkit.runtime.backends import make_backend
    from slmkit.runtime.confidence.evaluate import read_gold, run, summarize
    from slmkit.runtime.confidence.report import write_report
    from slmkit.runtime.spec import load_spec

    path = spec_path(spec, bundle)
    routing = load_spec(path)
    name = tier or next(iter(routing.confidence_check.tiers), None)
    if name is None or name not in {t.name for t in routing.tiers}:
        raise SlmkitError(f"No tier {name!r} to evaluate in {path}." if name else f"{path} checks no tier.",
                          hint="Pass --tier NAME (a llama.cpp tier).")
    tier_spec = routing.tier(name)
    if tier_spec.backend != "llama.cpp":
        raise SlmkitError(f"Tier {name} runs on {tier_spec.backend}; confidence eval needs a llama.cpp tier "
                          "(every method reads the model's logits).")
    items = read_gold(data)
    if sample is not None:
        random.Random(sample).shuffle(items)
    items = items[:limit] if limit else items
    tokens = max_tokens or tier_spec.max_tokens
    backend = make_backend(tier_spec, path.resolve().parent)
    try:
        with progress_display() as progress:
            task = progress.add_task(f"Answering and scoring on {name}", total=len(items))
            observations, failed = run(backend, routing.confidence_check, items, tokens, lambda: progress.advance(task))
    finally:
        backend.close()
    if not observations:
        raise SlmkitError(f"Tier {name} failed on every request ({failed[0] if failed else 'none given'}).")
    summary = summarize(observations, routing.confidence_check)
    summary.update({"data": str(data), "spec": str(path), "tier": name, "model": tier_spec.model,
                    "max_tokens": tokens, "failed": failed})
    points = {m: ([o.values[m] for o in observations if m in o.values],
                  [o.correct[m] for o in observations if m in o.values]) for m in summary["methods"]}
    json_path, html_path = write_report(summary, points, report)
    table = Table(title=f"{summary['n']} requests on {name}: {_pct(summary['accuracy'])} of answers right")
    for column in ("method", "n", "right", "AUROC", "threshold", "kept", "right when kept", "when escalated", "ms p50"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, m in summary["methods"].items():
        label = f"[bold]{method}[/] (spec)" if method == summary["default_method"] else method
        table.add_row(label, str(m["n"]), _pct(m["accuracy"]), _num(m["auroc"]), _num(m["threshold"]), _pct(m["kept_share"]),
                      _pct(m["kept_accuracy"]), _pct(m["escalated_accuracy"]), f"{m['ms_p50']:.1f}")
    Console().print(table)
    for problem in failed[:5]:
        console.print(f"[yellow]failed[/] {problem}")
    console.print(f"[green]Wrote[/] {json_path} and {html_path}")
