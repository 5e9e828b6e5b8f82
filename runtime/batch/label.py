"""Labelling logged requests with a labeller tier (a cloud model from the spec), the task table as
its rubric: `slmkit logs label`.

Each answer is journalled the moment it arrives (OUT/journal/part-N.jsonl, one flushed line per
request), so a crash or Ctrl-C loses nothing already paid for: a resumed shard labels only the
requests its journal lacks. The shard's Parquet part and tally are written when it ends
(runtime/batch/output.py). Requests are rate-limited per worker; a request the labeller fails on
(after retries) is recorded as failed and labelled again by the next run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from slmkit.runtime.backends.base import BackendError, estimate_tokens
from slmkit.runtime.data import skipped_lines
from slmkit.runtime.batch.job import run_shards
from slmkit.runtime.batch.output import OutputFolder, PartWriter
from slmkit.runtime.batch.shards import Shard, describe_all, plan, read
from slmkit.runtime.data import parse_record
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import ChatOptions, Request
from slmkit.runtime.spec import RoutingSpec, TierSpec, parse_spec
from slmkit.runtime.tasks import TASKS, TIER_OF

LABEL_SHARD_BYTES = 256 * 1024      # ~600 requests: the running cost is reported per shard
SHOWN_CHARS = (4000, 1000)          # head and tail of a long request the labeller sees (its length is stated)
ANSWER_TOKENS = 40                  # {"task_category": "..."} with room to spare
RETRIES = 4                         # per request, on any labeller failure, with exponential backoff from 1 s
SKIPPED_EXAMPLES = 5
TIERS = ("simple", "medium", "complex")

RUBRIC = ("You label requests sent to an AI assistant by the kind of task they ask for, so they can be routed "
          "to a model of the right size. The task categories:\n"
          + "\n".join(f"- {task.category}: {task.description}" for task in TASKS)
          + "\n\nReply with JSON only: {\"task_category\": \"<one category above>\"}. Judge the task, not the topic; "
            "if a request fits several, pick the most demanding one.")

# OpenAI's structured outputs (the Anthropic backend forces the same schema through a tool).
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "task_label", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["task_category"],
    "properties": {"task_category": {"type": "string", "enum": [task.category for task in TASKS]}}}}}


def label_messages(request: Request) -> list[dict]:
    """The labeller's chat: the rubric as system prompt, then the request (its system prompt, its
    user text; a long text as head and tail, with its length stated)."""
    text = request.user
    head, tail = SHOWN_CHARS
    if len(text) > head + tail:
        text = f"{text[:head]}\n[... {len(text) - head - tail:,} characters left out ...]\n{text[-tail:]}"
    shown = f"System prompt of the request: {request.system}\n\n" if request.system else ""
    return [{"role": "system", "content": RUBRIC},
            {"role": "user", "content": f"{shown}Request ({len(request.user):,} characters):\n{text}"}]


def parse_label(text: str) -> str:
    """The task category of the labeller's answer (the first JSON object in it). Raises ValueError
    when there is none or it is not a category of the task table."""
    match = re.search(r"\{.*?\}", text, re.DOTALL)
    if match is None:
        raise ValueError("no JSON object in the answer")
    try:
        category = json.loads(match.group(0)).get("task_category")
    except (json.JSONDecodeError, AttributeError):
        raise ValueError("the answer's JSON does not parse") from None
    if category not in TIER_OF:
        raise ValueError(f"{category!r} is not a task category of the table")
    return category


def request_cost(tier: TierSpec, input_tokens: int, output_tokens: int) -> float:
    """USD of one labeller call at the tier's per-million-token prices."""
    return (input_tokens * tier.price_in_per_mtok + output_tokens * tier.price_out_per_mtok) / 1e6


def labeller_tier(spec: RoutingSpec, name: str | None) -> TierSpec:
    """The tier named, else the costliest cloud tier. Raises SlmkitError for an unknown or on-device tier."""
    if name is None:
        cloud = [t for t in spec.tiers if not t.on_device]
        if not cloud:
            raise SlmkitError("The spec has no cloud tier to label with.", hint="Name one with --tier.")
        return _usable(max(cloud, key=lambda t: t.price_in_per_mtok + t.price_out_per_mtok))
    names = [t.name for t in spec.tiers]
    if name not in names:
        raise SlmkitError(f"No tier {name} in the spec.", hint=f"Its tiers: {', '.join(names)}.")
    return _usable(spec.tier(name))


def _usable(tier: TierSpec) -> TierSpec:
    if tier.on_device or tier.backend == "simulated":
        raise SlmkitError(f"Tier {tier.name} is {'on-device' if tier.on_device else 'simulated'}; label with a cloud "
                          f"model (an openai or anthropic tier).",
                          hint="Add one to the spec (base_url, model, api_key_env, prices) and pass --tier NAME.")
    return tier


class RateLimiter:
    """At most `per_second` calls per second from all threads (evenly spaced)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller's slot: one slot every 1/per_second s, in call order."""
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        time.sleep(max(0.0, slot - now))


@dataclass
class LabelTally:
    """What a labelling run did: requests seen, labelled, failed; tokens and USD spent (this run and
    earlier runs of the same job alike); agreement with the labels the input already had."""

    n: int = 0
    labelled: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    tiers: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TIERS})
    # existing tier -> labeller tier -> count, over requests that had a tier and were labelled
    agreement: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {u: 0 for u in TIERS} for t in TIERS})
    categories_compared: int = 0
    categories_agreeing: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)   # reason -> count

    def add(self, existing_tier: str | None, existing_category: str, row: dict) -> None:
        """Count one request's row (labelled, or failed with row["error"])."""
        self.n += 1
        self.input_tokens += row["input_tokens"] or 0
        self.output_tokens += row["output_tokens"] or 0
        self.cost_usd += row["cost_usd"] or 0.0
        if row["tier"] is None:
            self.failed += 1
            self.failures[row["error"]] = self.failures.get(row["error"], 0) + 1
            return
        self.labelled += 1
        self.tiers[row["tier"]] += 1
        if existing_tier in self.agreement:
            self.agreement[existing_tier][row["tier"]] += 1
        if existing_category:
            self.categories_compared += 1
            self.categories_agreeing += existing_category == row["task_category"]

    def merge(self, other: LabelTally) -> LabelTally:
        """Add `other`'s counts into this tally; returns self."""
        for name in ("n", "labelled", "failed", "input_tokens", "output_tokens", "cost_usd", "categories_compared",
                     "categories_agreeing", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for tier, count in other.tiers.items():
            self.tiers[tier] += count
        for truth, row in other.agreement.items():
            for tier, count in row.items():
                self.agreement[truth][tier] += count
        for reason, count in other.failures.items():
            self.failures[reason] = self.failures.get(reason, 0) + count
        self.skipped_examples.extend(other.skipped_examples[:max(0, SKIPPED_EXAMPLES - len(self.skipped_examples))])
        return self

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> LabelTally:
        """The tally `to_state()` wrote."""
        return cls(**state)

    def figures(self) -> dict:
        """The report: counts, spend, tier mix of the labels, and agreement with existing labels
        (share of requests agreeing and Cohen's kappa over the tier, share agreeing over the category)."""
        compared = sum(sum(row.values()) for row in self.agreement.values())
        agreeing = sum(self.agreement[t][t] for t in TIERS)
        kappa = None
        if compared:
            observed = agreeing / compared
            expected = sum(sum(self.agreement[t].values()) * sum(self.agreement[u][t] for u in TIERS)
                           for t in TIERS) / compared ** 2
            kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
        return {"n": self.n, "labelled": self.labelled, "failed": self.failed,
                "skipped_lines": skipped_lines(self.skipped, self.skipped_examples),
                "failures": dict(sorted(self.failures.items(), key=lambda item: -item[1])),
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
                "tier_mix": {t: (c / self.labelled if self.labelled else None) for t, c in self.tiers.items()},
                "agreement": {"compared": compared, "tier_agreement": agreeing / compared if compared else None,
                              "cohen_kappa": kappa, "confusion": self.agreement,
                              "categories_compared": self.categories_compared,
                              "category_agreement": (self.categories_agreeing / self.categories_compared
                                                     if self.categories_compared else None)}}


class ShardLabeller:
    """Labels shards with the labeller tier `tier_name` of `spec_data`, `rate` requests/s and
    `concurrency` requests in flight per worker; journals every answer under `journal` (a local or
    shared folder the workers can write)."""

    def __init__(self, spec_data: dict, base_dir: str, tier_name: str, journal: str, rate: float,
                 concurrency: int) -> None:
        from slmkit.runtime.backends import make_backend

        self.spec = parse_spec(spec_data, "routing.json")
        self.tier = self.spec.tier(tier_name)
        self.backend = make_backend(self.tier, Path(base_dir))
        self.options = ChatOptions(response_format=RESPONSE_FORMAT) if self.tier.can("response_format") else None
        self.journal = Path(journal)
        self.limiter = RateLimiter(rate)
        self.concurrency = concurrency
        self.lock = threading.Lock()

    def close(self) -> None:
        self.backend.close()

    def schema(self):
        """The Parquet schema of the label rows (runtime/batch/job.py Worker)."""
        import pyarrow as pa

        return pa.schema([("file", pa.string()), ("offset", pa.int64()), ("id", pa.string()), ("record", pa.string()),
                          ("existing_tier", pa.string()), ("tier", pa.string()), ("task_category", pa.string()),
                          ("model", pa.string()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
                          ("cost_usd", pa.float64()), ("error", pa.string())])

    def label(self, request: Request) -> dict:
        """One labeller call with retries: the row's label fields (tier None and `error` when it failed)."""
        messages = label_messages(request)
        error, spent_in, spent_out = "", 0, 0
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(2 ** (attempt - 1))
            self.limiter.wait()
            try:
                generation = self.backend.generate(messages, ANSWER_TOKENS, options=self.options)
            except BackendError as exc:
                error = exc.reason
                continue
            spent_in += generation.input_tokens or sum(estimate_tokens(m["content"]) for m in messages)
            spent_out += generation.output_tokens or estimate_tokens(generation.text)
            try:
                category = parse_label(generation.text)
            except ValueError as exc:
                error = f"unusable answer: {exc}"
                continue
            return {"tier": TIER_OF[category], "task_category": category, "model": generation.model, "error": None,
                    "input_tokens": spent_in, "output_tokens": spent_out,
                    "cost_usd": request_cost(self.tier, spent_in, spent_out)}
        return {"tier": None, "task_category": None, "model": self.tier.model, "error": error,
                "input_tokens": spent_in, "output_tokens": spent_out, "cost_usd": request_cost(self.tier, spent_in, spent_out)}

    def _journalled(self, path: Path) -> dict[int, dict]:
        rows = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # the last line of a killed write
                    continue
                if row.get("tier") is not None:   # failed requests are tried again
                    rows[row["offset"]] = row
        return rows

    def __call__(self, shard: Shard, writer: PartWriter | None) -> LabelTally:
        tally = LabelTally()
        path = self.journal / f"part-{shard.index:06d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        done = self._journalled(path)
        pending: list[tuple[int, dict, object]] = []
        rows: dict[int, dict] = {}
        items: dict[int, object] = {}
        for offset, record, problem in read(shard):
            item = None
            if problem is None:
                try:
                    item = parse_record(record, TIERS)
                except ValueError as exc:
                    problem = str(exc)
            if problem is not None:
                tally.skipped += 1
                if len(tally.skipped_examples) < SKIPPED_EXAMPLES:
                    tally.skipped_examples.append(f"{shard.url} byte {offset}: {problem}")
                continue
            items[offset] = item
            base = {"file": shard.url, "offset": offset, "id": item.request.id,
                    "record": json.dumps(record, ensure_ascii=False), "existing_tier": item.tier}
            if offset in done:
                rows[offset] = {**base, **{k: done[offset][k] for k in ("tier", "task_category", "model", "input_tokens",
                                                                         "output_tokens", "cost_usd", "error")}}
            else:
                pending.append((offset, base, item))
        with open(path, "a", encoding="utf-8") as journal:
            def run(entry: tuple[int, dict, object]) -> None:
                offset, base, item = entry
                row = {**base, **self.label(item.request)}
                with self.lock:
                    journal.write(json.dumps({k: v for k, v in row.items() if k != "record"}) + "\n")
                    journal.flush()
                    rows[offset] = row

            pool = ThreadPoolExecutor(self.concurrency)
            try:
                for future in [pool.submit(run, entry) for entry in pending]:
                    future.result()
            finally:  # on Ctrl-C: requests not yet sent are dropped, those in flight are waited for and journalled
                pool.shutdown(wait=True, cancel_futures=True)
        for offset in sorted(rows):
            row = rows[offset]
            tally.add(items[offset].tier, items[offset].category, row)
            if writer is not None:
                writer.add(row)
        return tally


@dataclass(frozen=True)
class LabelPlan:
    """What a labelling job will send before it starts: requests, already labelled, tokens, USD."""

    requests: int
    already_labelled: int
    input_tokens: int
    output_tokens: int
    usd: float


def estimate(urls: list[str], tier: TierSpec, already: int = 0) -> LabelPlan:
    """The labeller's tokens and cost for every request of `urls` (read once, in this process),
    counting ~4 characters per token and ANSWER_TOKENS per answer; `already`: requests a resumed job
    has labelled, left out of the cost."""
    requests, input_tokens = 0, 0
    for shard in plan(describe_all(urls)):
        for _, record, problem in read(shard):
            if problem is not None:
                continue
            try:
                request = parse_record(record, TIERS).request
            except ValueError:
                continue
            requests += 1
            input_tokens += sum(estimate_tokens(m["content"]) for m in label_messages(request))
    todo = max(0, requests - already)
    share = todo / requests if requests else 0.0
    input_tokens = round(input_tokens * share)
    return LabelPlan(requests, requests - todo, input_tokens, todo * ANSWER_TOKENS,
                     request_cost(tier, input_tokens, todo * ANSWER_TOKENS))


def journalled_count(out_url: str) -> int:
    """Requests already labelled in OUT's journal (a resumed job's head start)."""
    journal = Path(out_url) / "journal"
    count = 0
    for path in journal.glob("part-*.jsonl") if journal.is_dir() else ():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                count += json.loads(line).get("tier") is not None
            except json.JSONDecodeError:
                continue
    return count


def label_files(urls: list[str], spec_data: dict, base_dir: str, out_url: str, tier_name: str,
                rate: float = 5.0, concurrency: int = 4, engine: str = "ray", ray_address: str | None = None,
                workers: int | None = None, shard_bytes: int = LABEL_SHARD_BYTES,
                on_progress: Callable[[int, int, LabelTally], None] = lambda done, total, tally: None) -> LabelTally:
    """`slmkit logs label`: every request of `urls` labelled by tier `tier_name`, rows in OUT/parts,
    the journal in OUT/journal; re-running the same job resumes it. `rate`: requests/s over all
    workers. `on_progress(shards done, shards, running tally)` after each shard.

    Raises SlmkitError for unreadable inputs, an output folder of another job or a failed shard.
    """
    spec = parse_spec(spec_data, "routing.json")
    tier = spec.tier(tier_name)
    inputs = describe_all(urls)
    shards = plan(inputs, shard_bytes)
    out = OutputFolder(out_url)
    if out.fs.protocol not in ("file", ("file", "local")):
        raise SlmkitError("`logs label` journals every answer as it arrives, which needs a local or mounted --output folder.")
    out.prepare({"kind": "logs-label", "inputs": [asdict(item) for item in inputs], "tier": tier.model_dump(mode="json"),
                 "rubric": RUBRIC, "shard_bytes": shard_bytes, "shards": len(shards)})
    count = workers or 1
    total, finished = LabelTally(), 0

    def done(index: int, state: dict) -> None:
        nonlocal finished
        total.merge(LabelTally.from_state(state))
        finished += 1
        on_progress(finished, len(shards), total)

    factory = partial(ShardLabeller, spec_data, base_dir, tier_name, str(Path(out.path) / "journal"), rate / count, concurrency)
    run_shards(shards, factory, out, done, engine, ray_address, count, cpus_per_worker=0.25)
    return total
