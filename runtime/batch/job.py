"""Running shards: on Ray Data (an actor pool whose actors each hold one worker, i.e. one model),
or one after another in this process; either way finished shards are skipped on resume and each
finished shard's tally is handed to the caller as it arrives.

A worker is anything built by a picklable `factory()` with `schema()` (its Parquet row schema),
`__call__(shard, writer) -> tally` (tally with `to_state()`) and `close()`:
runtime/batch/route.py `ShardRouter`, runtime/batch/label.py `ShardLabeller`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Protocol

from slmkit.runtime.batch.output import OutputFolder, PartWriter
from slmkit.runtime.batch.shards import Shard
from slmkit.runtime.errors import SlmkitError

ENGINES = ("ray", "local")


class Worker(Protocol):
    def schema(self): ...
    def __call__(self, shard: Shard, writer: PartWriter | None): ...
    def close(self) -> None: ...


def process(worker: Worker, shard: Shard, out: OutputFolder | None) -> dict:
    """One shard through `worker`, committed to `out` (rows, then tally) when given; its tally state."""
    writer = PartWriter(worker.schema()) if out is not None else None
    state = worker(shard, writer).to_state()
    if out is not None:
        out.commit(shard.index, writer, state)
    return state


def ray_available() -> bool:
    """Whether Ray Data can be imported (the `batch` extra)."""
    from importlib.util import find_spec

    try:
        return find_spec("ray") is not None and find_spec("pyarrow") is not None
    except (ImportError, ValueError):  # a finder refusing it, a half-removed package
        return False


class _ShardActor:
    """A Ray Data actor: builds its worker once, then processes one shard per call."""

    def __init__(self, factory: Callable[[], Worker], out_url: str | None) -> None:
        self.worker = factory()
        self.out = OutputFolder(out_url) if out_url else None

    def __call__(self, batch: dict) -> dict:
        states = []
        for i in range(len(batch["index"])):
            shard = Shard(int(batch["index"][i]), str(batch["url"][i]), str(batch["kind"][i]),
                          int(batch["start"][i]), int(batch["stop"][i]))
            states.append(json.dumps(process(self.worker, shard, self.out)))
        return {"index": batch["index"], "state": states}


def _start_ray(address: str | None) -> bool:
    """Connect to `address`, or start a local Ray with one CPU per core; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    settings = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address:
            ray.init(address=address, **settings)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **settings)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SlmkitError(f"Cannot start Ray{f' at {address}' if address else ''}: {exc}",
                          hint="Check --ray-address (ray://HOST:10001, HOST:6379, or auto for a `ray start` cluster on this "
                                "machine; a cluster with token authentication needs its token in this environment), "
                                "or leave it out to run on this machine.") from None
    return True


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_shards(shards: list[Shard], factory: Callable[[], Worker], out: OutputFolder | None,
               on_done: Callable[[int, dict], None], engine: str = "ray", ray_address: str | None = None,
               workers: int | None = None, cpus_per_worker: float = 1.0) -> None:
    """Process every shard not already finished in `out`, calling `on_done(index, tally_state)` for
    each finished shard (those of an earlier run first). `workers`: actors (ray) holding one model
    each; default one per CPU of the machine or cluster. `cpus_per_worker`: the CPUs Ray reserves
    per actor (1 for compute-bound routing; less for labelling, which waits on the network).

    Raises SlmkitError for an unknown engine, Ray missing or unreachable, or a shard that fails
    (the shards finished before it stay finished).
    """
    if engine not in ENGINES:
        raise SlmkitError(f"Unknown batch engine {engine}.", hint=f"Use one of {', '.join(ENGINES)}.")
    done = out.done() if out is not None else {}
    for index in sorted(done):
        on_done(index, done[index])
    todo = [shard for shard in shards if shard.index not in done]
    if not todo:
        return
    if engine == "local":
        worker = factory()
        try:
            for shard in todo:
                on_done(shard.index, process(worker, shard, out))
        finally:
            worker.close()
        return
    _run_on_ray(todo, factory, out, on_done, ray_address, workers, cpus_per_worker)


def _run_on_ray(todo: list[Shard], factory: Callable[[], Worker], out: OutputFolder | None,
                on_done: Callable[[int, dict], None], ray_address: str | None, workers: int | None,
                cpus_per_worker: float) -> None:
    if not ray_available():
        raise SlmkitError("Batch jobs on Ray need the batch extra: pip install \"slmkit[batch]\"",
                          hint="Or run them in this process with --engine local.")
    import ray
    import ray.data

    started = _start_ray(ray_address)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        size = max(1, min(workers or _cluster_cpus(), len(todo)))
        dataset = ray.data.from_items([shard.to_dict() for shard in todo], override_num_blocks=len(todo))
        results = dataset.map_batches(_ShardActor, fn_constructor_args=(factory, out.url if out else None),
                                      batch_size=1, compute=ray.data.ActorPoolStrategy(size=size),
                                      num_cpus=cpus_per_worker)
        for row in results.iter_rows():
            on_done(int(row["index"]), json.loads(row["state"]))
    except SlmkitError:
        raise
    except Exception as exc:  # Ray wraps a worker's exception in its own types; name the cause once
        cause = getattr(exc, "cause", None) or exc
        raise SlmkitError(f"A batch shard failed: {cause}",
                          hint="Shards finished before it are kept; re-run the same command to resume.") from None
    finally:
        if started:
            ray.shutdown()
