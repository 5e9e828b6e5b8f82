"""Batch routing throughput and memory: `slmkit router eval` (or `simulate --router-only`) on Ray
Data vs routing one by one.

Synthetic labelled requests (the shipped training lines, each made unique by a numbered preamble
and a shuffled pick of its words, so nothing repeats) at each size are routed by the default
router with `slmkit router eval --engine ray --output DIR` (`--command simulate`: `slmkit simulate
--router-only --engine ray --output DIR`, which also measures the host and speed-tests the on-device
model once, ~10 s, and writes the HTML report). Printed per size: requests/s, ratio to
the one-by-one loop (`--engine local`, the anchor), peak RSS of the driver and of the largest
worker (sampled every 0.2 s with psutil), so flat memory as the input grows is visible.
`--resume` kills the largest run once a third of its shards are done and runs it again: the job
must finish where it stopped, with every request routed exactly once (its seconds include both runs).

Usage:
    python bench/batch_route.py [--sizes 10000,100000,1000000] [--baseline 2000] [--workers N]
                                [--command eval|simulate] [--resume] [--work /tmp/slmkit-batch-bench]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.compute
import pyarrow.dataset

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "data" / "routing" / "train.jsonl.gz", REPO / "data" / "routing" / "authored.jsonl.gz"]


def synthesize(count: int, path: Path, seed: int = 0) -> Path:
    """`count` unique labelled lines derived from the shipped data (written once per size)."""
    if path.is_file():
        return path
    records = []
    for source in SOURCES:
        with gzip.open(source, "rt", encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle)
    rng = random.Random(seed)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for number in range(count):
            record = dict(rng.choice(records))
            words = record["prompt"].split()
            picked = " ".join(rng.sample(words, min(len(words), 3)))
            record["id"] = f"synthetic-{number}"
            record["prompt"] = f"Ticket {number} ({picked}): {record['prompt']}"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    temporary.rename(path)
    return path


def run_job(kind: str, data: Path, out: Path, engine: str, workers: int | None,
            kill_after_shards: int | None = None) -> dict:
    """Run `slmkit router eval` (`kind` eval) or `slmkit simulate --router-only` (simulate) in its own
    process group; wall time, peak RSS (MB) of the driver and of the largest other process in the
    group, and the report (None when killed)."""
    if kind == "eval":
        report = out.with_suffix(".report.json")
        command = ["slmkit", "router", "eval", "--data", str(data), "--engine", engine, "--report", str(report)]
    else:
        report = out.with_suffix(".report") / "report.json"
        command = ["slmkit", "simulate", "--workload", str(data), "--router-only", "--engine", engine,
                   "--report", str(report.parent)]
    if engine == "ray":
        command += ["--output", str(out)]
    if workers:
        command += ["--workers", str(workers)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    driver = psutil.Process(process.pid)
    peak_driver = peak_worker = 0
    killed = False
    while process.poll() is None:
        try:
            peak_driver = max(peak_driver, driver.memory_info().rss)
            for child in driver.children(recursive=True):
                peak_worker = max(peak_worker, child.memory_info().rss)
        except psutil.Error:
            pass
        tallies = out / "tallies"
        if kill_after_shards and tallies.is_dir() and len(list(tallies.glob("part-*.json"))) >= kill_after_shards:
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    process.wait()
    seconds = time.perf_counter() - start
    if not killed and process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-2000:]}")
    return {"seconds": seconds, "driver_mb": peak_driver / 2**20, "worker_mb": peak_worker / 2**20,
            "report": None if killed else json.loads(report.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--baseline", type=int, default=2000, help="requests routed one by one for the anchor")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--command", choices=("eval", "simulate"), default="eval")
    parser.add_argument("--resume", action="store_true", help="kill the largest run a third of the way and resume it")
    parser.add_argument("--work", type=Path, default=Path("/tmp/slmkit-batch-bench"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)

    base = synthesize(args.baseline, args.work / f"requests-{args.baseline}.jsonl")
    anchor = run_job(args.command, base, args.work / f"anchor-{args.command}", "local", None)
    anchor_rps = args.baseline / anchor["seconds"]
    print(f"{args.command}: anchor one by one in one process, {args.baseline:,} requests: {anchor_rps:.0f} requests/s "
          f"(driver peak {anchor['driver_mb']:.0f} MB)")
    print(f"{'requests':>10} {'seconds':>9} {'req/s':>7} {'ratio':>6} {'driver MB':>10} {'worker MB':>10}")
    for size in sizes:
        data = synthesize(size, args.work / f"requests-{size}.jsonl")
        out = args.work / f"out-{args.command}-{size}"
        shutil.rmtree(out, ignore_errors=True)
        note = ""
        if args.resume and size == sizes[-1]:
            shards = -(-data.stat().st_size // (4 * 2**20))
            killed = run_job(args.command, data, out, "ray", args.workers, kill_after_shards=max(1, shards // 3))
            kept = len(list((out / "tallies").glob("part-*.json")))
            note = f"  (killed after {killed['seconds']:.0f} s with {kept} of {shards} shards done, then resumed)"
        run = run_job(args.command, data, out, "ray", args.workers)
        report = run["report"]
        rows = pyarrow.dataset.dataset(out / "parts", format="parquet").to_table(columns=["offset"])
        once = rows.num_rows == size and len(pyarrow.compute.unique(rows.column("offset"))) == size
        assert report["n"] == size and once, f"{report['n']} of {size} requests routed, {rows.num_rows} rows"
        seconds = run["seconds"] + (killed["seconds"] if note else 0.0)
        mix = report["tier_mix"]["routed"] if args.command == "simulate" else report["tier_mix"]
        print(f"{size:>10,} {seconds:>9.1f} {size / seconds:>7.0f} {size / seconds / anchor_rps:>5.2f}x "
              f"{run['driver_mb']:>10.0f} {run['worker_mb']:>10.0f}  on-device {mix['on-device']:.3f}, "
              f"every request routed once: {once}{note}")


if __name__ == "__main__":
    main()
