"""Shadow mode's recorder (`slmkit serve --shadow TIER`): the app keeps being answered by the tier it
uses today, and for each answered request a background thread records what the router would have
done, and optionally what the on-device model would have answered, off the request path.

Records are JSON lines in FOLDER/shadow-YYYY-MM-DD.jsonl (UTC day), flushed one by one (a crash
loses at most the line being written). The queue is bounded: when recording falls behind traffic
(an on-device answer takes seconds), requests beyond it are answered as usual and counted as
unrecorded in the next record written, never delayed or dropped.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from slmkit.runtime.backends.base import BackendError
from slmkit.runtime.pipeline import Pipeline, Response
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision

RECORD_VERSION = 1
QUEUE_SIZE = 1000


def served_summary(response: Response) -> dict:
    """What the app's tier did: tier, ok, summed tokens, cost (USD), latency (ms), answer text."""
    trace = response.trace
    return {"tier": response.tier, "ok": response.ok, "error": response.error,
            "input_tokens": sum(s.input_tokens for s in trace.steps), "output_tokens": sum(s.output_tokens for s in trace.steps),
            "cost_usd": trace.cost_usd, "latency_ms": trace.latency_ms, "text": response.text}


class ShadowRecorder:
    """Records for `pipeline` into `folder`; with `answer_on_device`, requests the router would have
    kept on-device are also answered by that tier (in the recorder's thread, one at a time)."""

    def __init__(self, pipeline: Pipeline, folder: Path, answer_on_device: bool = False,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.pipeline = pipeline
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.answer_on_device = answer_on_device
        self.queue: queue.Queue = queue.Queue(queue_size)
        self.unrecorded = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="slmkit-shadow", daemon=True)
        self.thread.start()

    def submit(self, request: Request, response: Response) -> None:
        """Queue one answered request; never blocks (a full queue counts it as unrecorded)."""
        try:
            self.queue.put_nowait((request, served_summary(response), datetime.now(timezone.utc)))
        except queue.Full:
            with self.lock:
                self.unrecorded += 1

    def close(self, timeout_s: float = 30.0) -> None:
        """Record what is queued (up to `timeout_s`), then stop the thread."""
        self.queue.put((None, None, None))
        self.thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            request, served, when = self.queue.get()
            if request is None:
                return
            try:
                self._write(self.record(request, served, when), when)
            except Exception as exc:  # noqa: BLE001 - recording must never take serving down; say why once per record
                self._write({"version": RECORD_VERSION, "time": when.isoformat(), "id": request.id,
                             "recording_error": f"{type(exc).__name__}: {exc}"}, when)

    def record(self, request: Request, served: dict, when: datetime) -> dict:
        """One record: the request, what was served, the router's decision and tier, maybe the on-device answer."""
        try:
            decision = self.pipeline.router.decide(request)
        except BackendError as exc:
            decision = RouteDecision(None, 0.0, raw=f"router failed: {exc.reason}", method=self.pipeline.spec.router.method)
        routed = choose_tier(decision, self.pipeline.spec.policy).tier
        with self.lock:
            unrecorded, self.unrecorded = self.unrecorded, 0
        result = {"version": RECORD_VERSION, "time": when.isoformat(), "id": request.id, "messages": request.messages(),
                  "served": served, "router": decision.to_dict(), "routed_tier": routed, "on_device": None,
                  "unrecorded_before": unrecorded}
        tier = self.pipeline.spec.tier(routed)
        if self.answer_on_device and tier.on_device and routed != served["tier"]:
            result["on_device"] = self._answer(request, routed)
        return result

    def _answer(self, request: Request, tier_name: str) -> dict:
        start = time.perf_counter()
        max_tokens = request.max_tokens or self.pipeline.spec.tier(tier_name).max_tokens
        try:
            generation = self.pipeline.backend(tier_name).generate(request.messages(), max_tokens)
        except BackendError as exc:
            return {"tier": tier_name, "ok": False, "error": exc.reason, "latency_ms": (time.perf_counter() - start) * 1000}
        return {"tier": tier_name, "ok": True, "error": None, "text": generation.text, "input_tokens": generation.input_tokens,
                "output_tokens": generation.output_tokens, "latency_ms": generation.latency_ms}

    def _write(self, record: dict, when: datetime) -> None:
        path = self.folder / f"shadow-{when:%Y-%m-%d}.jsonl"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
