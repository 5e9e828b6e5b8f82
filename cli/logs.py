"""`slmkit logs label`: label logged requests with a cloud tier, the task table as the rubric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from slmkit.cli.extras import require_extra
from slmkit.cli.progress import progress as progress_display
from slmkit.cli.report import print_skipped
from slmkit.cli.routing import (
    BatchEngineOption,
    BundleOption,
    RayAddressOption,
    SpecOption,
    WorkersOption,
    batch_engine,
    spec_path,
)
from slmkit.runtime.errors import SlmkitError

logs_app = typer.Typer(help="Work on logged requests: label them for router training.", no_args_is_help=True)
console = Console(stderr=True)


@logs_app.command("label")
def label(
    data: Annotated[list[str], typer.Option(help="Logged requests: .jsonl, .jsonl.gz or .parquet (path or fsspec URL), "
                                                 "in the data format (`prompt` [+ `context`] or `messages`); repeat to combine.")],
    output: Annotated[Path, typer.Option(help="Folder for the labels: parts/ (Parquet), journal/ (every answer as it "
                                              "arrives), labelled.jsonl and report.json. Re-running resumes.")],
    spec: SpecOption = None,
    bundle: BundleOption = None,
    tier: Annotated[Optional[str], typer.Option(help="The labeller tier of the spec (default: its costliest cloud tier).")] = None,
    rate: Annotated[float, typer.Option(min=0.01, help="Labeller requests per second, over all workers.")] = 5.0,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight per worker.")] = 4,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Start without asking after showing the cost.")] = False,
    engine: BatchEngineOption = None,
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
) -> None:
    """Label every request simple/medium/complex and with its task category, using a labeller tier
    (OpenAI-compatible or Anthropic) and the task table (runtime/tasks.py) as the rubric; report
    agreement with the labels the requests already have."""
    require_extra("batch", "logs label")
    from slmkit.runtime.batch.label import LABEL_SHARD_BYTES, estimate, journalled_count, label_files, labeller_tier
    from slmkit.runtime.batch.shards import describe_all, plan
    from slmkit.runtime.spec import load_spec

    path = spec_path(spec, bundle)
    routing = load_spec(path)
    labeller = labeller_tier(routing, tier)
    chosen = batch_engine(engine, ray_address, len(plan(describe_all(data), LABEL_SHARD_BYTES)))
    with console.status("Counting the requests and their tokens"):
        cost = estimate(data, labeller, journalled_count(str(output)))
    if not cost.requests:
        raise SlmkitError(f"{', '.join(data)} holds no requests to label.", hint="Each line needs a `prompt` or `messages`.")
    console.print(f"{cost.requests:,} requests ({cost.already_labelled:,} already labelled here); the rest will send "
                  f"~{cost.input_tokens:,} input and ~{cost.output_tokens:,} output tokens to {labeller.name} "
                  f"({labeller.model}): ~${cost.usd:,.2f} at ${labeller.price_in_per_mtok:g}/${labeller.price_out_per_mtok:g} "
                  f"per million tokens, ~{(cost.requests - cost.already_labelled) / rate / 60:,.0f} min at {rate:g} requests/s.",
                  highlight=False)
    if not yes and not typer.confirm("Start labelling?", err=True):
        raise typer.Exit(1)
    spec_data = routing.model_dump(mode="json")
    try:
        with progress_display() as progress:
            task = progress.add_task(f"Labelling with {labeller.name} ({chosen})", total=None)

            def advance(done: int, total: int, tally) -> None:
                progress.update(task, completed=done, total=total,
                                description=f"Labelling with {labeller.name} ({chosen}): {tally.labelled:,} labelled, "
                                            f"{tally.failed:,} failed, ${tally.cost_usd:,.2f} spent")

            tally = label_files(data, spec_data, str(path.resolve().parent), str(output), labeller.name, rate, concurrency,
                                chosen, ray_address, workers, on_progress=advance)
    except KeyboardInterrupt:
        console.print(f"[bold red]interrupted:[/] every answer received is kept in {output / 'journal'}; "
                      f"run the same command again to label the rest.", highlight=False)
        raise typer.Exit(130) from None
    figures = tally.figures()
    exported = export_labels(output)
    (output / "report.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print_label_report(figures)
    print_skipped(console, tally.skipped_examples)
    console.print(f"[green]Wrote[/] {exported} ({figures['labelled']:,} labelled requests, the data format "
                  f"`slmkit router train` reads) and {output / 'report.json'}", highlight=False)


def export_labels(output: Path) -> Path:
    """OUTPUT/labelled.jsonl: each labelled request's original record with `tier` and `task_category`
    set by the labeller (an existing tier kept as `original_tier`) and `label_source`. Streams the
    Parquet parts in input order; written under a temporary name and renamed."""
    import pyarrow.parquet as pq

    target = output / "labelled.jsonl"
    temporary = output / ".labelled.jsonl.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        for part in sorted((output / "parts").glob("part-*.parquet")):
            for batch in pq.ParquetFile(part).iter_batches(columns=["record", "tier", "task_category", "model"]):
                for row in batch.to_pylist():
                    if row["tier"] is None:
                        continue
                    record = json.loads(row["record"])
                    if "tier" in record:
                        record["original_tier"] = record["tier"]
                    record.update({"tier": row["tier"], "task_category": row["task_category"],
                                   "label_source": f"labeller:{row['model']}"})
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    temporary.replace(target)
    return target


def print_label_report(figures: dict) -> None:
    """Counts, spend, the labels' tier mix and the agreement with existing labels, as a table."""
    table = Table(title="Labels", show_header=True, header_style="bold")
    for column in ("requests", "labelled", "failed", "USD", "simple", "medium", "complex", "agree (tier)", "kappa",
                   "agree (category)"):
        table.add_column(column)
    agreement = figures["agreement"]

    def share(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    mix = figures["tier_mix"]
    table.add_row(f"{figures['n']:,}", f"{figures['labelled']:,}", f"{figures['failed']:,}", f"{figures['cost_usd']:.2f}",
                  share(mix["simple"]), share(mix["medium"]), share(mix["complex"]), share(agreement["tier_agreement"]),
                  share(agreement["cohen_kappa"]), share(agreement["category_agreement"]))
    console.print(table)
    for reason, count in list(figures["failures"].items())[:5]:
        console.print(f"[yellow]failed[/] {count:,} × {reason}", highlight=False)
