"""What the simulator costs on top of the pipeline it replays, and how fast --router-only scores logs.

1. Overhead per request, model time excluded: every tier of the default spec is swapped for the
   `simulated` backend (answers are modelled, not computed), so the remaining time is routing +
   pipeline + the simulator's own work (trace conversion, device latency, bookkeeping). Side by side:
   bare `Pipeline.handle` (the anchor) vs `Simulator.run`; overhead = difference, ratio = sim / bare.
2. --router-only throughput: bare `router.decide` (the anchor) vs the batch router it runs on
   (runtime/batch/route.py `route_files`, this process, one worker: parsing, tallying), requests/s,
   plus summarize + report for the whole run. Ray's parallel speed-up is bench/batch_route.py's.
Requests are the shipped training data (4,474) or a seeded sample of it.
Usage:
    python bench/simulate_overhead.py [--requests 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from slmkit.runtime.batch.route import route_files
from slmkit.runtime.data import read_dataset
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.simulate.devices import builtin_devices
from slmkit.runtime.simulate.hostcal import host_calibration
from slmkit.runtime.simulate.report import write_report
from slmkit.runtime.simulate.run import Simulator
from slmkit.runtime.spec import parse_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "routing" / "train.jsonl.gz"


def all_simulated_pipeline() -> Pipeline:
    data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    for tier in data["tiers"]:
        if tier["backend"] != "simulated":
            tier.update(backend="simulated", model="on-device (simulated for this benchmark)",
                        simulated={"ttft_ms": 50.0, "tokens_per_s": 40.0, "output_tokens": 120})
    return Pipeline(parse_spec(data), default_spec_path().parent)


def per_request_ms(run, items) -> list[float]:
    times = []
    for item in items:
        start = time.perf_counter()
        run(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = read_dataset(DATA)
    items = dataset.items
    random.Random(args.seed).shuffle(items)
    items = items[:args.requests]
    pipeline = all_simulated_pipeline()
    simulator = Simulator(pipeline, builtin_devices()["iphone-15-pro"], host_calibration(), {})
    for item in items[:20]:  # warm the encoder session and caches
        pipeline.handle(item.request)

    bare = per_request_ms(lambda item: pipeline.handle(item.request), items)
    sim = per_request_ms(lambda item: simulator.run(item.request, item.tier), items)
    print(f"pipeline mode, {len(items)} requests, model time excluded (all tiers simulated)")
    print(f"{'':28}{'p50 ms':>10}{'mean ms':>10}")
    print(f"{'bare Pipeline.handle':28}{statistics.median(bare):>10.2f}{statistics.fmean(bare):>10.2f}")
    print(f"{'Simulator.run':28}{statistics.median(sim):>10.2f}{statistics.fmean(sim):>10.2f}")
    print(f"{'overhead per request':28}{statistics.median(sim) - statistics.median(bare):>10.3f}"
          f"{statistics.fmean(sim) - statistics.fmean(bare):>10.3f}   ratio sim/bare {statistics.fmean(sim) / statistics.fmean(bare):.3f}")

    start = time.perf_counter()
    for item in items:
        pipeline.router.decide(item.request)
    bare_s = time.perf_counter() - start
    spec_data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        workload = Path(folder) / "workload.jsonl"
        workload.write_text("".join(json.dumps({"prompt": item.request.user, "tier": item.tier}) + "\n" for item in items))
        start = time.perf_counter()
        tally = route_files([str(workload)], spec_data, str(default_spec_path().parent), workload=True,
                            output_tokens=simulator.output_tokens, engine="local")
        sim_s = time.perf_counter() - start
        start = time.perf_counter()
        write_report(simulator.summarize_routing(tally, 10_000), Path(folder) / "report")
        report_s = time.perf_counter() - start
    print(f"\nrouter-only, {len(items)} requests")
    print(f"{'':28}{'req/s':>10}")
    print(f"{'bare router.decide':28}{len(items) / bare_s:>10.1f}")
    print(f"{'simulate --router-only':28}{len(items) / sim_s:>10.1f}   ratio {bare_s / sim_s:.3f}")
    print(f"{'summarize + report':28}{report_s:>10.2f} s")
    pipeline.close()


if __name__ == "__main__":
    main()
