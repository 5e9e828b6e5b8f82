"""`slmkit route` and `slmkit router train|eval|schema`: no torch, no transformers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from slmkit.cli.extras import require_extra
from slmkit.cli.paths import writable_file, writable_folder
from slmkit.cli.progress import progress as progress_display
from slmkit.cli.report import print_skipped
from slmkit.runtime.errors import SlmkitError

router_app = typer.Typer(help="Train, evaluate and describe the request router.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()

SpecOption = Annotated[Optional[Path], typer.Option(help="routing.json (default: the built-in offline bundle).")]
BundleOption = Annotated[Optional[Path], typer.Option(help="Bundle folder holding routing.json.")]


def spec_path(spec: Path | None, bundle: Path | None) -> Path:
    """routing.json of `--bundle` (checked to name only files inside the bundle), else `--spec` (the
    user's own file: its paths may point anywhere), else the default bundle's. Raises SlmkitError for
    both, or for a bundle without routing.json or naming files outside itself."""
    from slmkit.runtime.default import default_spec_path

    if spec and bundle:
        raise SlmkitError("Pass --spec or --bundle, not both.")
    if bundle:
        from slmkit.runtime.validation import spec_paths_inside

        path = bundle / "routing.json"
        if not path.is_file():
            raise SlmkitError(f"{bundle} is not a bundle: it has no routing.json.", hint="Pass a folder written by "
                                                                                         "`slmkit package`.")
        if problems := spec_paths_inside(path):
            raise SlmkitError(f"{bundle} is not self-contained: {problems[0]}",
                              hint="A bundle's routing.json may only name files inside the bundle; check it with "
                                   "`slmkit verify`.")
        return path
    return spec or default_spec_path()


def spec_for_method(path: Path, method: str | None) -> tuple[dict, Path]:
    """The spec's JSON, with the router switched to a built-in method when asked."""
    from slmkit.runtime.default import METHOD_PROMPTS
    from slmkit.runtime.spec import load_spec

    spec = load_spec(path)
    data = spec.model_dump(mode="json")
    if method and method != spec.router.method:
        if method not in METHOD_PROMPTS:
            raise SlmkitError(f"Unknown router method {method}.", hint=f"Use classifier or one of {', '.join(METHOD_PROMPTS)}.")
        local = next((t.name for t in spec.tiers if t.on_device), None)
        if local is None:
            raise SlmkitError(f"Method {method} runs on a local model, and {path} has no on-device tier.")
        data["router"].update({"method": method, "tier": local, "prompt": METHOD_PROMPTS[method], "weights": None,
                               "temperature": 1.0})
    return data, path.resolve().parent


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_figures(title: str, rows: dict[str, dict]) -> None:
    """One table row per split: n, accuracy, macro-F1, on-device shares and relative cost."""
    table = Table(title=title)
    for column in ("split", "n", "accuracy", "macro-F1", "simple on-device", "complex on-device", "cost share"):
        table.add_column(column, justify="right" if column != "split" else "left", no_wrap=column == "split")
    for name, f in rows.items():
        table.add_row(name, str(f["n"]), _share(f["accuracy"]), _share(f["macro_f1"]), _share(f["simple_kept_on_device"]),
                      _share(f["complex_on_device"]), _share(f["cost_share"]))
    out.print(table)


def print_sweep(figures: dict) -> None:
    """The simple route's confidence bar from 0 to 0.99: on-device shares and relative cost at each."""
    table = Table(title="Threshold sweep (simple → on-device when its probability ≥ t)")
    for column in ("t", "on-device", "simple kept", "complex on-device", "cost share"):
        table.add_column(column, justify="right")
    for row in figures["threshold_sweep"]:
        table.add_row(f"{row['simple_min_confidence']:.2f}", _share(row["on_device"]), _share(row["simple_kept_on_device"]),
                      _share(row["complex_on_device"]), _share(row["cost_share"]))
    out.print(table)


def print_groups(title: str, groups: dict[str, dict]) -> None:
    """Per-group figures (a source each), with each group's commonest error."""
    table = Table(title=title)
    for column in ("source", "n", "accuracy", "simple kept", "complex kept", "commonest error"):
        left = column in ("source", "commonest error")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for name, f in groups.items():
        errors = [(count, truth, predicted) for truth, row in f["confusion"].items() for predicted, count in row.items()
                  if predicted != truth and count]
        count, truth, predicted = max(errors, default=(0, "", ""))
        error = f"{truth}→{predicted} {count / f['n']:.0%}" if count else "—"
        table.add_row(name, str(f["n"]), _share(f["accuracy"]), _share(f["simple_kept_on_device"]),
                      _share(f["complex_on_device"]), error)
    out.print(table)


DataFilesOption = Annotated[list[Path], typer.Option(
    "--data", help="Labelled requests, .jsonl or .jsonl.gz (the shared train-set format); repeat to combine files.")]
EncoderOption = Annotated[str, typer.Option(help="classifier: sentence encoder added to the n-gram features, minilm-l3 "
                                                 "(MiniLM's first 3 layers, 32 tokens) | minilm (all 6, 128 tokens) | none. "
                                                 "Built into OUTPUT/encoder (int8 ONNX) unless already there.")]


def check_encoder(name: str) -> None:
    """Raises SlmkitError unless `name` is an encoder of converter/routing/encoder_export.py ENCODERS or none."""
    from slmkit.converter.routing.encoder_export import ENCODERS

    if name not in (*ENCODERS, "none"):
        raise SlmkitError(f"Unknown encoder {name}.", hint=f"Use {', '.join(ENCODERS)} or none.")
FoldsOption = Annotated[int, typer.Option(min=2, help="Cross-validation folds (stratified and grouped-by-template splits).")]
COption = Annotated[float, typer.Option("--c", min=1e-6, help="Inverse L2 strength of the logistic regression.")]
TargetOption = Annotated[str, typer.Option(help="What the classifier head predicts: category (each request's task_category, "
                                                "summed into its tier; transfers better to new sources) | tier | auto "
                                                "(category when every request has one).")]


def resolve_target(target: str, dataset, method: str = "classifier") -> str:
    """auto -> category when every request has a task_category, else tier; probe heads predict tiers."""
    from slmkit.converter.routing.train import TARGETS

    if target not in (*TARGETS, "auto"):
        raise SlmkitError(f"No router target named {target!r}.", hint="Use category, tier or auto.")
    if method != "classifier":
        if target == "category":
            raise SlmkitError(f"--target category is for the classifier router; {method} predicts tiers.")
        return "tier"
    if target == "auto":
        return "category" if all(item.category for item in dataset.items) else "tier"
    return target


@router_app.command()
def cv(
    data: DataFilesOption,
    by: Annotated[str, typer.Option(help="source: leave one source out (the estimate for traffic the router never saw) | "
                                         "template: grouped by source+template | random: stratified k-fold.")] = "source",
    spec: SpecOption = None,
    folds: FoldsOption = 5,
    c: COption = 10.0,
    encoder: EncoderOption = "minilm-l3",
    encoder_dir: Annotated[Path, typer.Option(callback=writable_folder, help="Where the encoder is exported (reused when present).")] = Path("out/router/encoder"),
    target: TargetOption = "auto",
    temperature: Annotated[Optional[float], typer.Option(min=0.01, help="Figures at this temperature (e.g. the shipped "
                                                                          "router's); default: fitted on these out-of-fold logits.")] = None,
    report: Annotated[Optional[Path], typer.Option(callback=writable_file, help="Write every figure as JSON here.")] = None,
) -> None:
    """Cross-validate the classifier router: figures out of fold, pooled and per held-out source."""
    require_extra("convert", "router cv")
    from slmkit.converter.routing.train import (
        SPLITS,
        cross_validate,
        features_for,
        fold_count,
        head_target,
    )
    from slmkit.runtime.data import read_datasets
    from slmkit.runtime.paths import write_atomically
    from slmkit.runtime.spec import parse_spec

    check_encoder(encoder)
    if by not in SPLITS:
        raise SlmkitError(f"No cross-validation split named {by!r}.", hint=f"Use one of: {', '.join(SPLITS)}.")
    base = spec_path(spec, None)
    spec_data, _ = spec_for_method(base, None)
    spec_data["router"].update({"method": "classifier", "tier": None, "weights": "router-head.json",
                                "encoder": "encoder" if encoder != "none" else None})
    routing = parse_spec(spec_data, str(base))
    dataset = read_datasets(data, tuple(routing.router.labels))
    print_skipped(console, dataset.skipped)
    target = resolve_target(target, dataset)
    head_target(dataset, list(routing.router.labels), target)  # refuses inconsistent categories before any work
    heads = fold_count(dataset, by, folds)  # refuses too few sources before any work
    sentence_encoder = _encoder(encoder, encoder_dir) if encoder != "none" else None
    with progress_display() as progress:
        task = progress.add_task("Computing features", total=len(dataset.items))
        X, _ = features_for(dataset, routing, sentence_encoder, progress=lambda: progress.advance(task))
        task = progress.add_task(f"Fitting {SPLITS[by].replace('_', ' ')} heads", total=heads)
        figures = cross_validate(X, dataset, routing, by, c, folds, temperature, target, progress=lambda: progress.advance(task))
    figures.update({"data": [str(path) for path in data], "encoder": encoder, "C": c})
    print_figures(f"Out-of-fold, {SPLITS[by].replace('_', ' ')}, {target} head (temperature {figures['temperature']:.3g})",
                  {by: figures})
    if "by_group" in figures:
        print_groups("Each source, routed by a head trained without it", figures["by_group"])
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(report, json.dumps(figures, indent=2) + "\n")
        console.print(f"[green]Wrote[/] {report}")


@router_app.command()
def train(
    data: DataFilesOption,
    output: Annotated[Path, typer.Option(callback=writable_folder, help="Folder for routing.json and the trained head.")] = Path("out/router"),
    spec: SpecOption = None,
    folds: FoldsOption = 5,
    c: COption = 10.0,
    holdout: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share kept out of training, written to OUTPUT/holdout.jsonl.")] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the holdout split.")] = 0,
    encoder: EncoderOption = "minilm-l3",
    target: TargetOption = "auto",
    method: Annotated[str, typer.Option(help="classifier | probe (a head on the on-device model's hidden state) | "
                                             "label_logits (fit bias + temperature of the zero-shot label scores); "
                                             "probe and label_logits run the llama.cpp on-device model once per request.")] = "classifier",
) -> None:
    """Train or calibrate a router; print cross-validated figures and write a routing.json using it."""
    require_extra("convert", "router train")
    from slmkit.runtime.data import read_datasets

    check_encoder(encoder)
    if method not in ("classifier", "probe", "label_logits"):
        raise SlmkitError(f"`router train` fits classifier, probe or label_logits routers, not {method}.")
    base = spec_path(spec, None)
    spec_data, base_dir = spec_for_method(base, None)
    dataset = read_datasets(data)
    print_skipped(console, dataset.skipped)
    target = resolve_target(target, dataset, method)
    held_out = []
    if holdout:
        dataset, held_out = _split(dataset, holdout, seed)
    output.mkdir(parents=True, exist_ok=True)
    if method == "label_logits":
        path, temperature, cv = _calibrate_label_logits(dataset, spec_data, base, base_dir, output, folds)
    else:
        path, temperature, cv = _fit_head(dataset, data, spec_data, base, base_dir, output, method, encoder, c, folds, target)
    if held_out:
        _write_jsonl(output / "holdout.jsonl", held_out)
    report = {"data": [str(path) for path in data], "method": method, "target": target, "examples": len(dataset.items), "held_out": len(held_out),
              "temperature": temperature, "cross_validation": cv}
    (output / "train-report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_figures(f"Out-of-fold figures, {target} head (temperature {temperature:.3g})", cv)
    console.print(f"[green]Wrote[/] {path}" + (f" and {output / 'holdout.jsonl'}" if held_out else ""))



def _local_llama_backend(spec_data: dict, base: Path, base_dir: Path, why: str):
    """The spec's on-device llama.cpp tier and its engine (probe and label_logits run on it)."""
    from slmkit.runtime.backends import make_backend
    from slmkit.runtime.spec import parse_spec

    local = next((t for t in parse_spec(spec_data, str(base)).tiers if t.on_device and t.backend == "llama.cpp"), None)
    if local is None:
        raise SlmkitError(f"{why} runs on the on-device model, and {base} has no on-device llama.cpp tier.")
    return local, make_backend(local, base_dir)


def _fit_head(dataset, data: list[Path], spec_data: dict, base: Path, base_dir: Path, output: Path, method: str,
              encoder: str, c: float, folds: int, target: str):
    from slmkit.converter.routing.train import train as fit
    from slmkit.converter.routing.train import write_bundle_router
    from slmkit.runtime.checksums import sha256_file
    from slmkit.runtime.spec import parse_spec

    router: dict = {"method": "classifier", "encoder": "encoder" if encoder != "none" else None, "tier": None}
    backend = None
    if method == "probe":
        local, backend = _local_llama_backend(spec_data, base, base_dir, "A probe head")
        router = {"method": "probe", "encoder": None, "tier": local.name}
    spec_data["router"].update({**router, "weights": "router-head.json"})
    routing = parse_spec(spec_data, str(base))
    sentence_encoder = _encoder(encoder, output / "encoder") if router["encoder"] else None
    try:
        with progress_display() as progress:
            task = progress.add_task("Computing features", total=len(dataset.items))
            result = fit(dataset, routing, C=c, folds=folds, data_files=[(path.name, sha256_file(path)) for path in data],
                         encoder=sentence_encoder, probe_backend=backend, target=target,
                         progress=lambda: progress.advance(task))
    finally:
        if backend is not None:
            backend.close()
    return write_bundle_router(result, spec_data, output, router), result.temperature, result.cv


def _calibrate_label_logits(dataset, spec_data: dict, base: Path, base_dir: Path, output: Path, folds: int):
    from slmkit.converter.routing.calibrate import calibrate, label_logit_matrix
    from slmkit.converter.routing.train import write_routing
    from slmkit.runtime.default import METHOD_PROMPTS
    from slmkit.runtime.router.label_logits import LabelLogitsRouter
    from slmkit.runtime.spec import parse_spec

    local, backend = _local_llama_backend(spec_data, base, base_dir, "label_logits")
    own = spec_data["router"] if spec_data["router"].get("method") == "label_logits" else {}
    router = {"method": "label_logits", "tier": local.name, "weights": None, "encoder": None, "bias": {}, "temperature": 1.0,
              "prompt": own.get("prompt") or METHOD_PROMPTS["label_logits"]}
    spec_data["router"].update(router)
    routing = parse_spec(spec_data, str(base))
    try:
        with progress_display() as progress:
            task = progress.add_task("Scoring labels with the on-device model", total=len(dataset.items))
            logits = label_logit_matrix(dataset, LabelLogitsRouter(routing.router, backend), lambda: progress.advance(task))
    finally:
        backend.close()
    result = calibrate(logits, dataset, routing, folds)
    path = write_routing(spec_data, output, {**router, "bias": result.bias, "temperature": result.temperature})
    return path, result.temperature, result.cv


def _encoder(name: str, folder: Path):
    """The encoder in `folder`, exported there first when it is missing or a different one."""
    from slmkit.converter.routing.encoder_export import RECIPE, export_encoder
    from slmkit.runtime.router.encoder import SentenceEncoder

    config = folder / "encoder.json"
    try:
        described = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing or broken: export it again
        described = {}
    if not isinstance(described, dict) or (described.get("name"), described.get("recipe")) != (name, RECIPE):
        with console.status(f"Exporting the {name} sentence encoder to int8 ONNX"):
            export_encoder(name, folder)
    return SentenceEncoder(folder)


def _split(dataset, share: float, seed: int):
    """Stratified by tier: the same share of each label held out."""
    import random

    from slmkit.runtime.data import Dataset

    rng = random.Random(seed)
    keep, held = [], []
    for label in sorted({item.tier for item in dataset.items}):
        items = [item for item in dataset.items if item.tier == label]
        rng.shuffle(items)
        cut = round(len(items) * share)
        held += items[:cut]
        keep += items[cut:]
    return Dataset(keep, dataset.skipped), held


def _write_jsonl(path: Path, items) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            record = {"id": item.request.id, "prompt": item.request.user, "context": "", "tier": item.tier,
                      "source": item.source, "template": item.template}
            if item.request.system:
                record["system"] = item.request.system
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


BatchEngineOption = Annotated[Optional[str], typer.Option(
    "--engine", help="ray: shards on Ray Data, one model per CPU (the batch extra) | local: one after another here. "
                     "Default: ray when installed and there are two shards or more.")]
RayAddressOption = Annotated[Optional[str], typer.Option(help="A Ray cluster to run on: ray://HOST:10001, HOST:6379, or auto "
                                                              "(the one `ray start` runs on this machine); default: a "
                                                              "local Ray, nothing to start.")]
WorkersOption = Annotated[Optional[int], typer.Option(min=1, help="Ray actors, each holding one router (default: one per CPU).")]
SampleOption = Annotated[Optional[int], typer.Option(min=1, help="Take N requests drawn at random (seeded by --seed, "
                                                                "file order kept); reads the input in this process first.")]
LimitOption = Annotated[Optional[int], typer.Option(min=1, help="Take only the first N requests (after --sample).")]
SeedOption = Annotated[Optional[int], typer.Option(min=0, help="Seed for --sample (default 0).")]


def batch_engine(engine: str | None, ray_address: str | None, shards: int) -> str:
    """The engine a batch command uses: the one asked for, else ray when a cluster is named or Ray is
    installed and the job has two shards or more (a single shard gains nothing from it), else local."""
    from slmkit.runtime.batch.job import ENGINES, ray_available

    if engine is not None:
        if engine not in ENGINES:
            raise SlmkitError(f"Unknown engine {engine}.", hint=f"Use one of {', '.join(ENGINES)}.")
        if engine == "local" and ray_address:
            raise SlmkitError("--ray-address runs on Ray; it cannot be combined with --engine local.")
        return engine
    if ray_address:
        return "ray"
    return "ray" if ray_available() and shards > 1 else "local"


@router_app.command("eval")
def evaluate_router(
    data: Annotated[list[str], typer.Option(help="Labelled requests: .jsonl, .jsonl.gz or .parquet, a path or any fsspec URL "
                                                 "(s3://, gs://, ...); repeat to combine files.")],
    spec: SpecOption = None,
    bundle: BundleOption = None,
    method: Annotated[Optional[str], typer.Option(help="Evaluate a built-in method instead: label_logits | prompt_json.")] = None,
    report: Annotated[Optional[Path], typer.Option(callback=writable_file, help="Write every figure as JSON here.")] = None,
    output: Annotated[Optional[str], typer.Option(help="Folder (or fsspec URL) for one Parquet row per request "
                                                       "(OUTPUT/parts) and report.json; re-running the same job resumes it.")] = None,
    sample: SampleOption = None,
    limit: LimitOption = None,
    seed: SeedOption = None,
    by_source: Annotated[bool, typer.Option("--by-source", help="Also figures per `source` of the data.")] = False,
    engine: BatchEngineOption = None,
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
) -> None:
    """Run the router on labelled requests: accuracy, macro-F1, confusion, on-device shares, sweep.

    Inputs are split into shards routed in parallel (runtime/batch); the figures are the same
    whichever engine runs them."""
    import tempfile

    from slmkit.runtime.batch.route import route_files
    from slmkit.runtime.batch.shards import describe_all, plan
    from slmkit.runtime.evaluation import GROUP_FIGURES
    from slmkit.runtime.router.provenance import head_info, overlap_warning, trained_on
    from slmkit.runtime.data import skipped_lines
    from slmkit.runtime.spec import parse_spec

    path = spec_path(spec, bundle)
    spec_data, base_dir = spec_for_method(path, method)
    routing = parse_spec(spec_data, str(path))
    with tempfile.TemporaryDirectory(prefix="slmkit-eval-") as scratch:
        inputs, skipped, selection = selected_inputs(data, tuple(routing.router.labels), False, sample, limit, seed,
                                                     Path(scratch), output)
        chosen = batch_engine(engine, ray_address, len(plan(describe_all(inputs))))
        with progress_display() as progress:
            task = progress.add_task(f"Routing with {routing.router.method} ({chosen})", total=None)
            tally = route_files(inputs, spec_data, str(base_dir), output, by_source, engine=chosen, ray_address=ray_address,
                                workers=workers, on_progress=lambda done, total: progress.update(task, completed=done,
                                                                                                 total=total))
    tally.add_skipped(skipped)
    print_skipped(console, tally.skipped_examples, tally.skipped)
    if not tally.routing.n:
        raise SlmkitError(f"{', '.join(data)} holds no usable labelled requests.",
                          hint="Each line needs a `prompt` (or `messages`) and a `tier` label.")
    figures = tally.routing.figures()
    trained = trained_on(head_info(routing.router, base_dir))
    overlap = None if trained is None else {"requests": tally.routing.n, "seen": tally.seen_in_training,
                                            "share": tally.seen_in_training / tally.routing.n}
    figures.update({"data": data[0] if len(data) == 1 else data, "spec": str(path),
                    "skipped_lines": skipped_lines(tally.skipped, tally.skipped_examples),
                    "selection": selection, "training_overlap": overlap})
    print_figures(f"{routing.router.method} on {', '.join(Path(url).name for url in data)} (latency p50 "
                  f"{figures['latency_ms']['p50']:.2f} ms, p95 {figures['latency_ms']['p95']:.2f} ms)", {"eval": figures})
    print_sweep(figures)
    if warning := overlap_warning(overlap):
        console.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if by_source:
        figures["by_source"] = {source: {k: v for k, v in tally.by_source[source].figures().items() if k in GROUP_FIGURES}
                                for source in sorted(tally.by_source)}
        print_groups("Per source", figures["by_source"])
    text = json.dumps(figures, indent=2) + "\n"
    if output:
        from slmkit.runtime.batch.output import OutputFolder

        console.print(f"[green]Wrote[/] {OutputFolder(output).write_report('report.json', text)} and the rows in "
                      f"{output}/parts (Parquet)", highlight=False)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf-8")
        console.print(f"[green]Wrote[/] {report}")


def selected_inputs(urls: list[str], labels: tuple[str, ...], workload: bool, sample: int | None, limit: int | None,
                    seed: int | None, scratch: Path, output: str | None) -> tuple[list[str], list[str], dict | None]:
    """The inputs a batch routing command reads, the lines skipped on the way ("URL byte N: why", for its tally)
    and the selection for its report: `urls` as given, or with --sample/--limit the selection
    (runtime/batch/select.py), written to OUTPUT/selections/ when the job has an --output (so its rows point at
    a file that stays, and the same command resumes), else to `scratch`. One rule for `router eval` and
    `simulate --router-only`, each line parsed as the batch router parses it. Raises SlmkitError for --seed
    without --sample, or when no line is usable."""
    check_seed(seed, sample)
    if sample is None and limit is None:
        return urls, [], None
    from functools import partial

    from slmkit.runtime.batch.route import parse_input
    from slmkit.runtime.batch.select import select_lines, selection_jsonl
    from slmkit.runtime.simulate.workload import WHAT

    what = WHAT if workload else "labelled requests (each line a `prompt` or `messages` and a `tier` label)"
    chosen, skipped = select_lines(urls, partial(parse_input, labels=labels, workload=workload), what, sample, limit,
                                   seed or 0)
    if sample is not None and len(chosen) < min(sample, limit or sample):
        console.print(f"[yellow]note[/] --sample {sample:,} is more than the {len(chosen):,} usable lines: taking them all",
                      highlight=False)
    text, name = selection_jsonl(chosen)
    if output:
        from slmkit.runtime.batch.output import OutputFolder

        where = OutputFolder(output).keep(f"selections/{name}.jsonl", text)
    else:
        where = str(scratch / f"{name}.jsonl")
        Path(where).write_text(text, encoding="utf-8")
    return [where], skipped, selection_record(urls, sample, seed, limit, len(chosen), where if output else None)


def check_seed(seed: int | None, sample: int | None) -> None:
    """Raises SlmkitError for --seed without --sample (it would change nothing)."""
    if seed is not None and sample is None:
        raise SlmkitError("--seed only chooses which lines --sample draws.", hint="Add --sample N, or leave out --seed.")


def selection_record(urls: list[str], sample: int | None, seed: int | None, limit: int | None, requests: int,
                     file: str | None = None) -> dict | None:
    """What a report says of the --sample/--limit selection it was computed on (None: every line)."""
    if sample is None and limit is None:
        return None
    return {"from": urls, "sample": sample, "seed": (seed or 0) if sample is not None else None, "limit": limit,
            "requests": requests, "file": file}


@router_app.command()
def schema(output: Annotated[Optional[Path], typer.Option(callback=writable_file, help="Write here instead of printing.")] = None) -> None:
    """The JSON Schema of routing.json (what the mobile ports validate against)."""
    from slmkit.runtime.spec import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def route(
    message: Annotated[str, typer.Argument(help="The user message.")],
    system: Annotated[str, typer.Option(help="System prompt.")] = "",
    spec: SpecOption = None,
    bundle: BundleOption = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Answer length limit (default: the tier's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the response and trace as JSON.")] = False,
) -> None:
    """Route one request through the pipeline and print the answer with its trace."""
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.request import Request

    pipeline = Pipeline.from_spec_file(spec_path(spec, bundle))
    try:
        with console.status("Routing and answering"):
            response = pipeline.handle(Request(user=message, system=system, max_tokens=max_tokens))
    finally:
        pipeline.close()
    trace = response.trace.to_dict()
    if as_json:
        out.print_json(json.dumps({"text": response.text, "tier": response.tier, "error": response.error, "trace": trace}))
        return
    print_trace(trace)
    if response.error:
        raise SlmkitError(response.error)
    out.print(response.text, markup=False, highlight=False, emoji=False)  # model text verbatim


def print_trace(trace: dict) -> None:
    """`slmkit route --trace`: the router's decision, the policy's choice, then every step in a table."""
    router = trace["router"]
    probabilities = ", ".join(f"{k} {v:.2f}" for k, v in router["probabilities"].items())
    console.print(f"[bold]router[/] {router['method']}: {router['label']} (confidence {router['confidence']:.2f}; "
                  f"{probabilities}) in {router['latency_ms']:.2f} ms")
    console.print(f"[bold]policy[/] → {trace['policy']['tier']} ({trace['policy']['reason']})")
    table = Table(show_header=True, header_style="bold")
    for column in ("tier", "step", "ok", "ms", "tokens in/out", "cost $", "note"):
        table.add_column(column)
    for step in trace["steps"]:
        note = step["error"] or ("simulated" if step["simulated"] else step["model"])
        table.add_row(step["tier"], step["purpose"], "yes" if step["ok"] else "no", f"{step['latency_ms']:.0f}",
                      f"{step['input_tokens']}/{step['output_tokens']}", f"{step['cost_usd']:.6f}", escape(str(note)))
    console.print(table)
    for check in trace["confidence"]:
        note = " (unparsable, default)" if check.get("parsed") is False else ""
        note += f" (failed: {check['error']})" if check.get("error") else ""
        note += f" for option {check['choice']!r} of {check['options']}" if check.get("choice") else ""
        console.print(f"[bold]confidence[/] {check['tier']} ({check['method']}): {check['value']:.3g}{note}, threshold "
                      f"{check['threshold']:g} → {'escalate' if check['escalate'] else 'keep'}")
    console.print(f"[bold]answered by[/] {trace['final_tier']} in {trace['latency_ms']:.0f} ms, cost ${trace['cost_usd']:.6f}")
