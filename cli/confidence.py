"""`slmkit confidence eval`: every confidence method on a tier's answers to gold requests. No torch."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from slmkit.cli.extras import missing_modules, require_extra
from slmkit.cli.paths import writable_file
from slmkit.cli.report import print_problem
from slmkit.cli.routing import BundleOption, SpecOption, spec_path
from slmkit.cli.progress import progress as progress_display
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.paths import write_atomically

confidence_app = typer.Typer(help="Measure the confidence check that keeps or escalates on-device answers.",
                             no_args_is_help=True)
console = Console(stderr=True)


# Options `eval` and `train` share: which tier answers the gold requests, and how many of them.
TierOption = Annotated[Optional[str], typer.Option(help="Tier to answer (default: the first checked tier).")]
MaxTokensOption = Annotated[Optional[int], typer.Option(min=1, help="Answer length (default: the tier's max_tokens).")]
LimitOption = Annotated[Optional[int], typer.Option(min=1, help="Use the first N requests (after --sample).")]
SampleOption = Annotated[Optional[int], typer.Option(min=0, help="Shuffle with this seed before --limit.")]
ObservationsOption = Annotated[Optional[Path], typer.Option("--observations", help=(
    "Also write each answer's features and label here (JSONL), for `confidence train --from-observations`."))]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _observe(path: Path, routing: Any, data: Path, tier: str | None, max_tokens: int | None, limit: int | None,
             sample: int | None, ratings: bool) -> tuple[list[Any], list[str], str, int]:
    """Answer every gold request on the checked tier: (observations, failures, tier, max_tokens)."""
    from slmkit.runtime.backends import make_backend
    from slmkit.runtime.confidence.evaluate import read_gold, run

    name = tier or next(iter(routing.confidence_check.tiers), None)
    if name is None or name not in {t.name for t in routing.tiers}:
        raise SlmkitError(f"No tier {name!r} to evaluate in {path}." if name else f"{path} checks no tier.",
                          hint="Pass --tier NAME (a llama.cpp tier).")
    tier_spec = routing.tier(name)
    if tier_spec.backend != "llama.cpp":
        raise SlmkitError(f"Tier {name} runs on {tier_spec.backend}; confidence eval and train need a llama.cpp tier "
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
            observations, failed = run(backend, routing.confidence_check, items, tokens,
                                       lambda: progress.advance(task), ratings=ratings)
    finally:
        backend.close()
    if not observations:
        raise SlmkitError(f"Tier {name} failed on every request ({failed[0] if failed else 'none given'}).")
    return observations, failed, name, tokens


def _add_held_out_head(observations: list[Any]) -> None:
    """The `trained:held_out` row: each source scored by a head fitted on the other sources. Left
    out, with one line saying why, where the convert extra (scikit-learn) is not installed."""
    if missing := missing_modules("convert"):
        console.print(f"[yellow]trained:held_out left out[/]: fitting it needs the convert extra "
                      f"({', '.join(missing)} not installed): pip install \"slmkit\\[convert]\"", highlight=False)
        return
    from slmkit.converter.routing.confidence_head import held_out_values
    from slmkit.runtime.confidence.evaluate import TRAINED_HELD_OUT

    records = [o.record() for o in observations]
    for obs, value in zip(observations, held_out_values(records)):
        if value is not None:
            obs.values[TRAINED_HELD_OUT], obs.correct[TRAINED_HELD_OUT] = value, obs.features_right
            obs.ms[TRAINED_HELD_OUT] = obs.features_ms


@confidence_app.command("eval")
def evaluate_confidence(
    data: Annotated[Path, typer.Option(help='Gold requests, .jsonl(.gz): {"prompt", "context"?, "references": [...]}.')],
    report: Annotated[Path, typer.Option(callback=writable_file, help="Write every number here (JSON); the HTML report goes beside it.")],
    spec: SpecOption = None,
    bundle: BundleOption = None,
    tier: TierOption = None,
    max_tokens: MaxTokensOption = None,
    limit: LimitOption = None,
    sample: SampleOption = None,
    observations_out: ObservationsOption = None,
) -> None:
    """Answer each gold request on a local tier and score every method: AUROC, kept share and
    accuracy at the spec's threshold, time, and per held-out source. `trained:held_out` is a head
    fitted on the other sources, scored on each one (what `confidence train` would ship)."""
    from slmkit.runtime.confidence.evaluate import summarize
    from slmkit.runtime.confidence.report import write_report
    from slmkit.runtime.spec import load_spec

    path = spec_path(spec, bundle)
    routing = load_spec(path)
    observations, failed, name, tokens = _observe(path, routing, data, tier, max_tokens, limit, sample, ratings=True)
    _add_held_out_head(observations)
    if observations_out is not None:
        _write_observations(observations, observations_out)
    summary = summarize(observations, routing.confidence_check)
    summary.update({"data": str(data), "spec": str(path), "tier": name, "model": routing.tier(name).model,
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
        print_problem(console, "[yellow]failed[/]", problem)
    console.print(f"[green]Wrote[/] {json_path} and {html_path}")


def _write_observations(observations: list[Any], path: Path) -> None:
    lines = "".join(json.dumps(o.record()) + "\n" for o in observations)
    write_atomically(path, lines)


def _read_observations(path: Path) -> list[dict[str, Any]]:
    from slmkit.runtime.confidence.head import FEATURES
    from slmkit.runtime.data import read_lines

    def parse(record: object) -> dict[str, Any]:
        if not isinstance(record, dict) or not isinstance(record.get("right"), bool):
            raise ValueError("no boolean `right`")
        features = record.get("features")
        if not isinstance(features, dict) or any(not isinstance(features.get(f), (int, float)) for f in FEATURES):
            raise ValueError(f"`features` must give a number for each of {', '.join(FEATURES)}")
        return record

    return read_lines(path, parse, "labelled answers").items


@confidence_app.command("train")
def train_confidence(
    output: Annotated[Path, typer.Option(callback=writable_file, help="Write the spec with the fitted `trained` check here (routing.json).")],
    data: Annotated[Optional[Path], typer.Option(help='Gold requests, .jsonl(.gz): {"prompt", "context"?, "references": [...], "source"?}.')] = None,
    from_observations: Annotated[Optional[Path], typer.Option(help="Fit on answers already observed (eval/train --observations) instead of --data.")] = None,
    spec: SpecOption = None,
    bundle: BundleOption = None,
    tier: TierOption = None,
    max_tokens: MaxTokensOption = None,
    limit: LimitOption = None,
    sample: SampleOption = None,
    observations_out: ObservationsOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT.")] = False,
) -> None:
    """Fit the `trained` confidence head on an app's own labelled answers and write a spec that uses it.

    The tier answers each request (the option walk where the request lists labels, else a
    generation); a logistic head on the answers' own features is fitted, its threshold calibrated
    leave-one-source-out when the data has a `source` field with several values."""
    require_extra("convert", "confidence train")
    from slmkit.converter.routing.confidence_head import train_head
    from slmkit.runtime.spec import load_spec, parse_spec

    path = spec_path(spec, bundle)
    if (data is None) == (from_observations is None):
        raise SlmkitError("Pass --data (gold requests to answer) or --from-observations (answers already labelled), one of them.")
    if output.exists() and not force:
        raise SlmkitError(f"{output} exists.", hint="Pass --force to overwrite it.")
    routing = load_spec(path)  # a spec that is not valid JSON or not a spec fails here, named
    raw = json.loads(path.read_text(encoding="utf-8"))
    if output.resolve().parent != path.resolve().parent:
        relative = [t.name for t in routing.tiers if t.model and not t.model.startswith("embedded:")
                    and t.backend in ("llama.cpp", "onnxruntime-genai", "coreml") and not Path(t.model).is_absolute()]
        if relative:
            raise SlmkitError(f"Tier {relative[0]}'s model path is relative to {path.parent}; {output} would not find it.",
                              hint=f"Write the spec beside the one it comes from: --output {path.parent / output.name}")
    if not routing.confidence_check.tiers and tier is None:
        raise SlmkitError(f"{path} checks no tier.", hint="Pass --tier NAME (a llama.cpp tier).")
    if data is not None:
        observations, failed, _, _ = _observe(path, routing, data, tier, max_tokens, limit, sample, ratings=False)
        if observations_out is not None:
            _write_observations(observations, observations_out)
        records = [o.record() for o in observations]
        for problem in failed[:5]:
            print_problem(console, "[yellow]failed[/]", problem)
    else:
        assert from_observations is not None
        records = _read_observations(from_observations)
    fitted = train_head(records)
    check = dict(raw.get("confidence_check") or {})
    if tier is not None and tier not in check.get("tiers", []):
        check["tiers"] = [*check.get("tiers", []), tier]
    check.update(method="trained", threshold=round(fitted.threshold, 6), head=fitted.head.model_dump())
    raw["confidence_check"] = check
    parse_spec(raw, str(output))  # never write a spec the runtime would refuse
    write_atomically(output, json.dumps(raw, indent=2) + "\n")
    s = fitted.summary
    table = Table(title=f"trained head on {s['n']} answers ({_pct(s['accuracy'])} right), sources: {', '.join(s['sources']) or '—'}")
    for column in ("held out", "n", "AUROC", "kept", "right when kept", "when escalated"):
        table.add_column(column, justify="left" if column == "held out" else "right")
    for source, m in s.get("by_source", {}).items():
        table.add_row(source, str(m["n"]), _num(m["auroc"]), _pct(m["kept_share"]), _pct(m["kept_accuracy"]),
                      _pct(m["escalated_accuracy"]))
    if "held_out_auroc" in s:
        table.add_row("[bold]all, each held out[/]", str(s["n"]), _num(s["held_out_auroc"]), _pct(s["held_out_kept_share"]),
                      _pct(s["held_out_kept_accuracy"]), _pct(s["held_out_escalated_accuracy"]))
    Console().print(table)
    console.print(f"threshold {fitted.threshold:.3f} ({s['threshold_source']})")
    console.print(f"[green]Wrote[/] {output}")
