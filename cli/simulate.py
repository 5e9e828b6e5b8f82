"""`slmkit simulate`, `slmkit cost` and `slmkit serve`: no torch, no transformers (runtime only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from slmkit.cli.paths import writable_folder
from slmkit.cli.report import print_skipped
from slmkit.cli.routing import (BatchEngineOption, BundleOption, LimitOption, RayAddressOption, SampleOption, SeedOption,
                                SpecOption, WorkersOption, batch_engine, check_seed, selected_inputs, selection_record,
                                spec_for_method, spec_path)
from slmkit.cli.progress import progress as progress_display
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.router.provenance import overlap_warning

console = Console(stderr=True)
out = Console()


def _money(value: float) -> str:
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 10 else f"{value:,.0f} ms"


def simulate(
    workload: Annotated[list[str], typer.Option(help="Requests to replay: .jsonl, .jsonl.gz or .parquet, a path, glob or "
                                                     "any fsspec URL (s3://, gs://, ...); the train-set format (labels "
                                                     "optional) or OpenAI chat logs. Repeat to combine files.")],
    device: Annotated[str, typer.Option(help="Device profile name from runtime/simulate/devices.yaml (or --devices); an unknown name lists them all.")] = "iphone-15-pro",
    report: Annotated[Path, typer.Option(callback=writable_folder, help="Folder for report.html and report.json.")] = Path("simulation"),
    spec: SpecOption = None,
    bundle: BundleOption = None,
    requests_per_day: Annotated[float, typer.Option(min=0, help="Traffic to price.")] = 10_000,
    router_only: Annotated[bool, typer.Option("--router-only", help="Only route, as a batch job (runtime/batch: shards "
                                              "on Ray Data when installed; millions of logged requests); costs use each "
                                              "tier's expected answer length.")] = False,
    sample: SampleOption = None,
    limit: LimitOption = None,
    seed: SeedOption = None,
    devices_file: Annotated[Optional[Path], typer.Option("--devices", help="Extra device profiles (YAML).")] = None,
    output_tokens: Annotated[int, typer.Option(min=1, help="Answer length assumed for tiers that are not run and "
                                               "model none.")] = 200,
    recalibrate: Annotated[bool, typer.Option("--recalibrate", help="Re-measure this host's bandwidth/compute.")] = False,
    output: Annotated[Optional[str], typer.Option(help="--router-only: folder (or fsspec URL) for one Parquet row per "
                                                       "request (OUTPUT/parts); re-running the same job resumes it.")] = None,
    engine: BatchEngineOption = None,
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
) -> None:
    """Replay a workload through the routing pipeline and predict latency, memory fit and cost on a device."""
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.simulate.devices import get_device, load_devices
    from slmkit.runtime.simulate.hostcal import host_calibration
    from slmkit.runtime.simulate.report import write_report
    from slmkit.runtime.simulate.run import Simulator, check_fit, predict_local_tiers
    from slmkit.runtime.simulate.workload import read_workload

    if not router_only and (output or engine or ray_address or workers):
        raise SlmkitError("--output, --engine, --ray-address and --workers run the batch router: add --router-only.",
                          hint="A pipeline run answers every request in this process, one at a time.")
    check_seed(seed, sample)
    profile = get_device(device, load_devices(devices_file))
    path = spec_path(spec, bundle)
    spec_data, base_dir = spec_for_method(path, None)
    tally, selection = None, None
    if router_only:   # route first: a bad input, option or output folder fails before the host is measured
        from slmkit.runtime.batch.shards import describe_all

        describe_all(workload)
        batch_engine(engine, ray_address, 1)
        pipeline = Pipeline.from_spec_file(path)
        try:
            check_fit(pipeline, profile, host_calibration(refresh=False))
        finally:
            pipeline.close()
        tally, selection = _route_workload(workload, spec_data, base_dir, sample, limit, seed, output_tokens, output,
                                           engine, ray_address, workers)
    pipeline = Pipeline.from_spec_file(path)
    try:
        dataset = None if router_only else read_workload(workload, tuple(pipeline.spec.router.labels), sample=sample,
                                                         limit=limit, seed=seed or 0)
        with console.status("Measuring this host and the on-device models"):
            host = host_calibration(refresh=recalibrate)
            predictions = predict_local_tiers(pipeline, profile, host)
        simulator = Simulator(pipeline, profile, host, predictions, output_tokens=output_tokens)
        if dataset is not None:
            print_skipped(console, dataset.skipped, where="the first are listed in report.json")
            with progress_display() as progress:
                task = progress.add_task("Routing and answering", total=len(dataset.items))
                outcomes = simulator.run_all(dataset, lambda: progress.advance(task))
    finally:
        pipeline.close()
    summary = (simulator.summarize(outcomes, dataset, requests_per_day) if dataset is not None
               else simulator.summarize_routing(tally, requests_per_day))
    if dataset is not None:
        selection = selection_record(workload, sample, seed, limit, len(dataset.items))
    summary["selection"] = selection
    json_path, html_path = write_report(summary, report)
    _print_summary(summary)
    console.print(f"[green]Wrote[/] {html_path} and {json_path.name}"
                  + (f"; one Parquet row per request in {output}/parts" if output else ""), highlight=False)


def _route_workload(workload: list[str], spec_data: dict, base_dir: Path, sample: int | None, limit: int | None,
                    seed: int | None, output_tokens: int, output: str | None, engine: str | None, ray_address: str | None,
                    workers: int | None):
    """simulate --router-only: the workload (or the --sample/--limit selection of it) through the batch
    router; the merged tally and the selection (cli/routing.py `selected_inputs`). Raises SlmkitError when no
    line is usable."""
    import tempfile

    from slmkit.runtime.batch.route import route_files
    from slmkit.runtime.batch.shards import describe_all, plan
    from slmkit.runtime.simulate.workload import WHAT

    with tempfile.TemporaryDirectory(prefix="slmkit-simulate-") as scratch:
        inputs, skipped, selection = selected_inputs(workload, tuple(spec_data["router"]["labels"]), True, sample, limit,
                                                     seed, Path(scratch), output)
        chosen_engine = batch_engine(engine, ray_address, len(plan(describe_all(inputs))))
        with progress_display() as progress:
            task = progress.add_task(f"Routing ({chosen_engine})", total=None)
            tally = route_files(inputs, spec_data, str(base_dir), output, workload=True, output_tokens=output_tokens,
                                engine=chosen_engine, ray_address=ray_address, workers=workers,
                                on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    tally.add_skipped(skipped)
    print_skipped(console, tally.skipped_examples, tally.skipped, where="the first are listed in report.json")
    if not tally.routing.n:
        first = f" ({tally.skipped_examples[0]})" if tally.skipped_examples else ""
        raise SlmkitError(f"{', '.join(workload)} holds no usable {WHAT}{first}.")
    return tally, selection


def _print_summary(s: dict) -> None:
    table = Table(title=f"{s['n']} requests on {s['device']['label']} ({s['mode']})", show_header=True, header_style="bold")
    e2e = "router" if s["mode"] == "router-only" else "e2e"
    for column in ("tier", "routed", "answered", "answer p50", "answer p95", f"{e2e} p50", f"{e2e} p95"):
        table.add_column(column, justify="right")
    for tier, share in s["tier_mix"]["final"].items():
        step = s["latency_ms"]["answer_step_by_tier"][tier]
        e2e = s["latency_ms"]["end_to_end_by_final_tier"][tier]
        table.add_row(tier, _pct(s["tier_mix"]["routed"][tier]), _pct(share), _ms(step["p50"]), _ms(step["p95"]),
                      _ms(e2e["p50"]), _ms(e2e["p95"]))
    out.print(table)
    e2e = s["latency_ms"]["end_to_end"]
    out.print(f"end to end p50 {_ms(e2e['p50'])}, p95 {_ms(e2e['p95'])}; router p50 {_ms(s['latency_ms']['router']['p50'])}")
    for tier, failed in s["tier_failures"].items():
        reason, times = max(failed["reasons"].items(), key=lambda item: item[1])
        console.print(f"[yellow]tier {tier} failed {failed['count']} time(s)[/]; commonest reason ({times}×): {reason}",
                      highlight=False)
    if s["escalation_rate"] is not None:
        out.print(f"routed on-device {_pct(s['routed_on_device'])}, answered on-device {_pct(s['kept_on_device'])}; "
                  f"escalated {_pct(s['escalation_rate'])}, fell back {_pct(s['fallback_rate'])}, "
                  f"failed {_pct(s['failure_rate'])}")
    if s.get("confidence_check"):
        check = s["confidence_check"]
        gold = (f"; with gold answers ({check['with_references']}): right {_pct(check['right_overall'])} overall, "
                f"{_pct(check['right_when_kept'])} when kept, {_pct(check['right_when_escalated'])} when escalated"
                if check["with_references"] else "")
        out.print(f"confidence check ({check['method']}): {check['checked']} answers checked, "
                  f"{_pct(check['kept_share'])} kept{gold}")
    for tier, p in s["predictions"].items():
        low, high = p["expected_efficiency"]
        out.print(f"{tier}: {p['model']} needs {p['ram_needed_gb']:.2f} of {p['usable_ram_gb']:g} GB; predicted "
                  f"decode {p['decode_tps']:.1f} tok/s (host reached {_pct(p['efficiency'])} of its bandwidth limit; "
                  f"quiet hosts {100 * low:.0f}-{100 * high:.0f} %), prefill {p['prefill_tps']:.0f} tok/s")
        for warning in p["warnings"]:
            console.print(f"[yellow]warning[/] tier {tier}: {warning}", highlight=False)
    for tier, why in s["unpredicted_tiers"].items():
        console.print(f"[yellow]tier {tier}[/]: {why}", highlight=False)
    if warning := overlap_warning(s["training_overlap"]):
        console.print(f"[yellow]warning[/]: {warning}", highlight=False)
    if s["routing"]:
        r = s["routing"]
        out.print(f"router vs labels: accuracy {_pct(r['accuracy'])}, simple kept on-device "
                  f"{_pct(r['simple_kept_on_device'])}, complex kept on-device {_pct(r['complex_on_device'])}")
    c = s["cost"]
    out.print(f"cost at {c['requests_per_day']:,.0f} requests/day: {_money(c['usd_per_day'])}/day, "
              f"{_money(c['usd_per_month'])}/month vs all-{c['baseline_tier']} {_money(c['baseline_usd_per_day'])}/day, "
              f"{_money(c['baseline_usd_per_month'])}/month: [bold]{_pct(c['savings'])} saved[/]")


def cost(
    requests_per_day: Annotated[Optional[float], typer.Option(min=0, help="Requests per day (preset default or 10,000).")] = None,
    mix: Annotated[Optional[str], typer.Option(help="Share per tier in percent, cheapest first, e.g. 70/20/10.")] = None,
    input_tokens: Annotated[Optional[float], typer.Option(min=0, help="Average input tokens per request.")] = None,
    output_tokens: Annotated[Optional[float], typer.Option(min=0, help="Average output tokens per request.")] = None,
    prices: Annotated[Optional[str], typer.Option(help="Preset name (list-2026-11, seed) or a YAML/JSON price file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """The routed-vs-all-frontier cost table (the seed's math, with dated per-tier prices)."""
    import json

    from slmkit.runtime.simulate.cost import cost_table, load_prices, parse_mix

    preset = load_prices(prices)
    d = preset.defaults
    shares = parse_mix(mix, len(preset.tiers)) if mix else [m / 100 for m in d.mix] if d.mix else None
    if shares is None:
        raise SlmkitError(f"Price preset {preset.name} has no default mix.", hint="Pass --mix, e.g. 70/20/10.")
    table = cost_table(preset, requests_per_day if requests_per_day is not None else d.requests_per_day or 10_000, shares,
                       input_tokens if input_tokens is not None else d.input_tokens or 500,
                       output_tokens if output_tokens is not None else d.output_tokens or 200)
    if as_json:
        out.print_json(json.dumps(table))
        return
    view = Table(title=f"{table['requests_per_day']:,.0f} requests/day, {table['input_tokens']:g} in + "
                       f"{table['output_tokens']:g} out tokens ({preset.name} prices, as of {preset.as_of})",
                 show_header=True, header_style="bold")
    for column in ("tier", "model", "share", "requests/day", "$/request", "$/day", "$/month"):
        view.add_column(column, justify="right")
    for row in table["tiers"]:
        view.add_row(row["tier"], row["model"], f"{100 * row['share']:g} %", f"{row['requests_per_day']:,.0f}",
                     f"{row['usd_per_request']:.6f}", _money(row["usd_per_day"]), _money(row["usd_per_month"]))
    view.add_row("[bold]routed", "", "100 %", f"{table['requests_per_day']:,.0f}", "",
                 f"[bold]{_money(table['routed']['usd_per_day'])}", f"[bold]{_money(table['routed']['usd_per_month'])}")
    view.add_row(f"all {table['baseline']['tier']}", "", "", "", "", _money(table["baseline"]["usd_per_day"]),
                 _money(table["baseline"]["usd_per_month"]))
    out.print(view)
    out.print(f"savings: [bold]{100 * table['savings']:.1f} %[/]  (prices: {preset.source})", highlight=False)


def serve(
    bundle: BundleOption = None,
    spec: SpecOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    max_concurrency: Annotated[int, typer.Option(min=1, help="Requests answered at once.")] = 4,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest accepted request body.")] = 1024 * 1024,
    queue_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds a request may wait for a slot.")] = 30.0,
    shadow: Annotated[Optional[str], typer.Option(help="Shadow mode: answer model \"auto\" with this tier (the one the "
                                                      "app uses today) and record what the router would have done.")] = None,
    shadow_log: Annotated[Path, typer.Option(callback=writable_folder, help="Folder for the shadow records "
                                                                            "(shadow-YYYY-MM-DD.jsonl).")] = Path("shadow"),
    shadow_answer: Annotated[bool, typer.Option("--shadow-answer", help="Also record the on-device answer of requests the "
                                                "router would keep on-device (off the request path).")] = False,
    api_key: Annotated[Optional[list[str]], typer.Option(help="Require 'Authorization: Bearer KEY' (repeat for several "
                                                              "keys; default: SLMKIT_API_KEY, comma-separated).",
                                                         show_default=False)] = None,
    insecure_no_auth: Annotated[bool, typer.Option("--insecure-no-auth", help="Allow a non-loopback --host without an "
                                                   "API key (anyone who reaches the port spends your tiers' budget).")] = False,
    key_requests_per_minute: Annotated[Optional[int], typer.Option(min=1, help="Per key: chat completions in any 60 s "
                                                                               "(the requests that spend); more get 429 with Retry-After.")] = None,
    key_usd_per_day: Annotated[Optional[float], typer.Option(min=0.000001, help="Per key: USD (the cost model's price of "
                                                                                "each answer) in any 24 h; then 429.")] = None,
) -> None:
    """An OpenAI-compatible /v1/chat/completions that routes every request (model "auto" or a tier name)."""
    import uvicorn
    from slmkit.runtime.auth import ENV_KEYS, ApiKeys, KeyLimits, is_loopback, keys_from
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.server import ServerLimits, Shadow, create_app

    accepted = keys_from(api_key or [])
    limits = KeyLimits(key_requests_per_minute, key_usd_per_day)
    if not accepted:
        if key_requests_per_minute is not None or key_usd_per_day is not None:
            raise SlmkitError("Per-key limits need API keys.", hint=f"Add --api-key KEY (or set {ENV_KEYS}).")
        if not is_loopback(host) and not insecure_no_auth:
            raise SlmkitError(f"Refusing to serve on {host} without an API key: anyone who can reach it could spend "
                              f"your cloud tiers' budget.",
                              hint=f"Add --api-key KEY (or set {ENV_KEYS}), or --insecure-no-auth if the network is "
                                   f"yours alone; --host 127.0.0.1 serves this machine only.")
    keys = ApiKeys(accepted, limits) if accepted else None
    pipeline = Pipeline.from_spec_file(spec_path(spec, bundle))
    names = [t.name for t in pipeline.spec.tiers]
    recorder = None
    if shadow is not None:
        from slmkit.runtime.shadow.recorder import ShadowRecorder

        if shadow not in names:
            pipeline.close()
            raise SlmkitError(f"--shadow {shadow}: no such tier.", hint=f"The spec's tiers: {', '.join(names)}.")
        recorder = ShadowRecorder(pipeline, shadow_log, answer_on_device=shadow_answer)
    elif shadow_answer:
        pipeline.close()
        raise SlmkitError("--shadow-answer records on-device answers in shadow mode; add --shadow TIER.")
    app = create_app(pipeline, ServerLimits(max_body_bytes=max_body_bytes, max_concurrency=max_concurrency,
                                            queue_timeout_s=queue_timeout),
                     Shadow(shadow, recorder) if recorder else None, keys)
    shown = f"[{host}]" if ":" in host else host   # an IPv6 address in a URL
    console.print(f"[green]Serving[/] {pipeline.spec.name} on http://{escape(shown)}:{port}/v1 (models: auto, {', '.join(names)})"
                  + (f"; shadow mode: auto is answered by {shadow}, records in {shadow_log}" if recorder else "")
                  + (f"; {len(keys)} API key(s) required" if keys else "; no API key required"), highlight=False)
    if keys is None and not is_loopback(host):
        console.print(f"[yellow]warning:[/] --insecure-no-auth: anyone who can reach {escape(host)}:{port} can spend your cloud "
                      "tiers' budget.", highlight=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    except OSError as exc:
        raise SlmkitError(f"Cannot listen on {host}:{port}: {exc}") from None
    finally:
        if recorder is not None:
            recorder.close()
        pipeline.close()


shadow_app = typer.Typer(help="Shadow runs: what routing would have changed while the app's tier kept answering.",
                         no_args_is_help=True)


@shadow_app.command("report")
def shadow_report(
    log: Annotated[Path, typer.Option(help="Folder of shadow records (or one shadow-*.jsonl file).")] = Path("shadow"),
    report: Annotated[Path, typer.Option(callback=writable_folder, help="Folder for report.html and report.json.")] = Path("shadow-report"),
    spec: SpecOption = None,
    bundle: BundleOption = None,
) -> None:
    """Turn shadow records into the cut-over report: share that would have stayed on-device, cost
    routed vs served, tier mixes, disagreement examples."""
    from slmkit.runtime.data import skipped_lines
    from slmkit.runtime.shadow.report import ShadowTally, read_records, write_shadow_report
    from slmkit.runtime.spec import load_spec

    tally = ShadowTally(load_spec(spec_path(spec, bundle)))
    skipped = read_records(log, tally)
    print_skipped(console, skipped, where="report.json lists them (up to 1,000)")
    if not tally.n:
        raise SlmkitError(f"{log} holds no usable shadow record.")
    figures = tally.figures() | {"skipped_lines": skipped_lines(len(skipped), skipped)}
    json_path, html_path = write_shadow_report(figures, report)
    out.print(f"{tally.n:,} requests: {_pct(figures['would_stay_on_device'])} would have stayed on-device; cost "
              f"${figures['cost']['served_usd']:,.2f} served vs ${figures['cost']['routed_usd']:,.2f} routed "
              f"(saved {_pct(figures['cost']['saved'])}); {len(figures['disagreements'])} disagreement example(s).")
    console.print(f"[green]Wrote[/] {html_path} and {json_path.name}")
