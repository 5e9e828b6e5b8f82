"""Routing one shard: every request through the spec's router, one Parquet row per line and one
mergeable tally per shard (what `router eval` and `simulate --router-only` report)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from slmkit.runtime.backends.base import BackendError, estimate_request_tokens
from slmkit.runtime.batch.job import run_shards
from slmkit.runtime.batch.output import OutputFolder, PartWriter
from slmkit.runtime.batch.shards import SHARD_BYTES, Shard, describe_all, plan, read
from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.data import LabelledRequest, parse_record
from slmkit.runtime.evaluation import DEFAULT_OUTPUT_TOKENS, STATE_FORMAT, RoutingTally
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.router.provenance import fingerprint, head_info, trained_on
from slmkit.runtime.simulate.workload import parse_line
from slmkit.runtime.spec import RoutingSpec, parse_spec

SKIPPED_EXAMPLES = 5   # skipped lines named per shard; the rest are counted


def parse_input(record: object, labels: tuple[str, ...], workload: bool) -> LabelledRequest:
    """One input line as the batch router reads it: a workload line (`simulate`: labels optional, OpenAI
    chat logs too) or a labelled line of the shared format (`router eval`). Raises ValueError naming what
    is wrong (a line without `tier` in router eval included)."""
    if workload:
        return parse_line(record, labels)
    item = parse_record(record, labels)
    if item.tier is None:
        raise ValueError("no `tier` label")
    return item


@dataclass
class RouteTally:
    """A shard's (or a whole job's) counts: the router figures overall and, when asked, per source;
    how many requests the head was trained on; lines skipped, the first few named."""

    routing: RoutingTally
    by_source: dict[str, RoutingTally] | None = None
    seen_in_training: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, spec: RoutingSpec, by_source: bool, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> RouteTally:
        return cls(RoutingTally(spec, output_tokens=output_tokens), {} if by_source else None)

    def merge(self, other: RouteTally) -> RouteTally:
        """Add `other`'s counts into this tally; returns self."""
        self.routing.merge(other.routing)
        if self.by_source is not None and other.by_source is not None:
            for source, tally in other.by_source.items():
                if source in self.by_source:
                    self.by_source[source].merge(tally)
                else:
                    self.by_source[source] = tally
        self.seen_in_training += other.seen_in_training
        self.skipped += other.skipped
        self.skipped_examples.extend(other.skipped_examples[:max(0, SKIPPED_EXAMPLES - len(self.skipped_examples))])
        return self

    def add_skipped(self, lines: list[str]) -> RouteTally:
        """Count `lines` ("URL byte N: why") skipped before routing (a --sample/--limit selection), named
        first among the examples; returns self."""
        self.skipped += len(lines)
        self.skipped_examples = (lines[:SKIPPED_EXAMPLES] + self.skipped_examples)[:SKIPPED_EXAMPLES]
        return self

    def to_state(self) -> dict:
        """A JSON-able form (the shard's `.tally.json`); `from_state` reads it back."""
        return {"routing": self.routing.to_state(),
                "by_source": None if self.by_source is None else {k: v.to_state() for k, v in self.by_source.items()},
                "seen_in_training": self.seen_in_training, "skipped": self.skipped, "skipped_examples": self.skipped_examples}

    @classmethod
    def from_state(cls, spec: RoutingSpec, state: dict) -> RouteTally:
        """The tally `to_state()` wrote, counted for `spec`. Raises ValueError for another spec's tally."""
        by_source = state["by_source"]
        return cls(RoutingTally.from_state(spec, state["routing"]),
                   None if by_source is None else {k: RoutingTally.from_state(spec, v) for k, v in by_source.items()},
                   int(state["seen_in_training"]), int(state["skipped"]), list(state["skipped_examples"]))


class ShardRouter:
    """Routes shards with the router of `spec_data` (a routing.json's content; relative paths from
    `base_dir`), built once: a batch worker holds one for its lifetime.

    `workload` False (router eval): lines in the train-set format with a `tier` label; True
    (simulate --router-only): workload lines (runtime/simulate/workload.py: the train-set format or
    OpenAI chat logs), labels optional. Lines that do not parse, or lack a required label, are
    skipped: counted, named and written with their reason. Costs assume `output_tokens` answers
    where a tier models no answer length."""

    def __init__(self, spec_data: dict, base_dir: str, by_source: bool = False, workload: bool = False,
                 output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        from slmkit.runtime.backends import make_backend
        from slmkit.runtime.router import make_router

        self.spec = parse_spec(spec_data, "routing.json")
        self.labels = tuple(self.spec.router.labels)
        self.by_source = by_source
        self.workload = workload
        self.output_tokens = output_tokens
        self.backends = {}
        if self.spec.router.tier:
            self.backends[self.spec.router.tier] = make_backend(self.spec.tier(self.spec.router.tier), Path(base_dir))
        self.router = make_router(self.spec, Path(base_dir), self.backends)
        self.trained = trained_on(head_info(self.spec.router, Path(base_dir))) or frozenset()

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()

    def decide(self, request) -> RouteDecision:
        """The router's decision; an engine failure on this request is an unparsed decision, as in serve."""
        try:
            return self.router.decide(request)
        except BackendError as exc:  # a model-based router's engine failing on one request: unparsed, as in serve
            return RouteDecision(None, 0.0, raw=f"router failed: {exc.reason}", method=self.spec.router.method)

    def __call__(self, shard: Shard, writer: PartWriter | None) -> RouteTally:
        """Route every record of `shard`; rows go to `writer` (None: tally only)."""
        tally = RouteTally.empty(self.spec, self.by_source, self.output_tokens)
        for offset, record, problem in read(shard):
            item = None
            if problem is None:
                try:
                    item = parse_input(record, self.labels, self.workload)
                except ValueError as exc:
                    problem = str(exc)
            if problem is not None:
                tally.skipped += 1
                if len(tally.skipped_examples) < SKIPPED_EXAMPLES:
                    tally.skipped_examples.append(f"{shard.url} byte {offset}: {problem}")
                if writer:
                    writer.add(self._row(shard, offset, None, None, None, problem))
                continue
            decision = self.decide(item.request)
            tokens = estimate_request_tokens(item.request)
            tally.routing.add(item.tier, decision, tokens)
            if tally.by_source is not None:
                tally.by_source.setdefault(item.source, RoutingTally(self.spec, output_tokens=self.output_tokens)).add(
                    item.tier, decision, tokens)
            tally.seen_in_training += fingerprint(item.request) in self.trained
            if writer:
                writer.add(self._row(shard, offset, item, decision, tokens, None))
        return tally

    def _row(self, shard: Shard, offset: int, item, decision: RouteDecision | None, tokens: int | None,
             skipped: str | None) -> dict:
        row_tier = choose_tier(decision, self.spec.policy).tier if decision else None
        row = {"file": shard.url, "offset": offset, "id": item.request.id if item else None,
               "source": item.source if item else None, "truth": item.tier if item else None,
               "label": decision.label if decision else None, "confidence": decision.confidence if decision else None,
               "tier": row_tier,
               "latency_ms": decision.latency_ms if decision else None, "input_tokens": tokens,
               "cost_usd": self.spec.tier(row_tier).expected_usd(tokens, self.output_tokens) if decision else None,
               "skipped": skipped}
        for label in self.labels:
            row[f"p_{label}"] = decision.probabilities.get(label) if decision else None
        return row

    def schema(self):
        """The Parquet schema of the rows (fixed, so a shard with only skipped lines has the same columns)."""
        import pyarrow as pa

        columns = [("file", pa.string()), ("offset", pa.int64()), ("id", pa.string()), ("source", pa.string()),
                   ("truth", pa.string()), ("label", pa.string()), ("confidence", pa.float64()), ("tier", pa.string()),
                   ("latency_ms", pa.float64()), ("input_tokens", pa.int64()), ("cost_usd", pa.float64()),
                   ("skipped", pa.string())]
        return pa.schema(columns + [(f"p_{label}", pa.float64()) for label in self.labels])


def route_files(urls: list[str], spec_data: dict, base_dir: str, out_url: str | None = None, by_source: bool = False,
                workload: bool = False, output_tokens: int = DEFAULT_OUTPUT_TOKENS, engine: str = "ray",
                ray_address: str | None = None, workers: int | None = None, shard_bytes: int = SHARD_BYTES,
                on_progress: Callable[[int, int], None] = lambda done, total: None) -> RouteTally:
    """Route every request of `urls` (JSONL, JSONL.gz, Parquet; local or fsspec URLs) in shards
    (`ShardRouter`: labelled lines for router eval, or with `workload` any workload line for
    simulate --router-only) and return the merged tally of every shard. With `out_url`, each shard's
    rows go to OUT/parts as Parquet and a re-run of the same job resumes (runtime/batch/output.py).
    `on_progress(shards done, shards)` after each shard.

    Raises SlmkitError for a missing or unreadable input, an output folder holding another job, or
    a failed shard (finished shards are kept).
    """
    spec = parse_spec(spec_data, "routing.json")
    inputs = describe_all(urls)
    shards = plan(inputs, shard_bytes)
    weights = Path(base_dir) / spec.router.weights if spec.router.weights else None
    out = None
    if out_url is not None:
        out = OutputFolder(out_url)
        out.prepare({"kind": "simulate-router-only" if workload else "router-eval",
                     "inputs": [asdict(item) for item in inputs], "spec": spec_data,
                     "router_weights_sha256": sha256_file(weights) if weights and weights.is_file() else None,
                     "by_source": by_source, "output_tokens": output_tokens, "tally_format": STATE_FORMAT,
                     "shard_bytes": shard_bytes, "shards": len(shards)})
    total = RouteTally.empty(spec, by_source, output_tokens)
    finished = 0

    def done(index: int, state: dict) -> None:
        nonlocal finished
        total.merge(RouteTally.from_state(spec, state))
        finished += 1
        on_progress(finished, len(shards))

    run_shards(shards, partial(ShardRouter, spec_data, base_dir, by_source, workload, output_tokens), out, done, engine,
               ray_address, workers)
    return total
