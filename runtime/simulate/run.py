"""Replay a workload through the same Pipeline the server and the ports run, and turn what the
host measured into what a device would see: latency per tier and end to end, tier mix,
escalations, fallbacks, accuracy against labels, and money against the all-frontier baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slmkit.runtime.backends.base import estimate_request_tokens
from slmkit.runtime.confidence.evaluate import is_right
from slmkit.runtime.data import Dataset, skipped_lines
from slmkit.runtime.evaluation import (DEFAULT_OUTPUT_TOKENS, GROUP_FIGURES, evaluate, percentile, share, simple_threshold,
                                      sweep_thresholds, with_simple_threshold)
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.router.provenance import head_info, trained_on, training_overlap
from slmkit.runtime.simulate.cost import DAYS_PER_MONTH
from slmkit.runtime.simulate.devices import DeviceProfile
from slmkit.runtime.simulate.hostcal import HostCalibration
from slmkit.runtime.simulate.speed import DevicePrediction, HostSpeed, gguf_footprint, predict, require_fit
from slmkit.runtime.spec import PolicySpec, RoutingSpec

if TYPE_CHECKING:
    from slmkit.runtime.batch.route import RouteTally

SPEED_TEST_RUNS = 3
CDF_POINTS = 200                                            # steps of a latency CDF in report.json, at most
LABEL_FIGURES = (*GROUP_FIGURES, "macro_f1")                # what `routing` reports: the router against labels


@dataclass
class Outcome:
    """One request, as the device would have experienced it."""

    truth: str | None
    decision: RouteDecision
    routed_tier: str
    final_tier: str | None
    escalated: bool = False
    fell_back: bool = False
    failed: bool = False
    router_ms: float = 0.0                      # predicted on the device
    steps: list[dict] = field(default_factory=list)
    latency_ms: float = 0.0                     # predicted end to end: router + every step + network
    host_latency_ms: float = 0.0                # what this machine took
    cost_usd: float = 0.0
    baseline_usd: float = 0.0
    references: tuple[str, ...] = ()            # gold answers, where the workload has them
    checks: list[dict] = field(default_factory=list)  # each confidence check: tier, method, value, escalate, answer


def _sized_local_tiers(pipeline: Pipeline, device: DeviceProfile, host: HostCalibration):
    """(tier, footprint) of every on-device llama.cpp tier, each checked to fit the device (its RAM
    need depends on the model and context only). Raises SlmkitError for one that does not fit."""
    for tier in pipeline.spec.tiers:
        if not tier.on_device or tier.backend != "llama.cpp" or not tier.model:
            continue
        footprint = gguf_footprint(resolve_model_file(tier.model, pipeline.base_dir), tier.context_tokens)
        require_fit(predict(device, footprint, host, None), device, tier.name)
        yield tier, footprint


def check_fit(pipeline: Pipeline, device: DeviceProfile, host: HostCalibration) -> None:
    """Refuse (SlmkitError) an on-device tier whose model does not fit the device, without loading
    or speed-testing it: what a long router-only run checks before it starts."""
    for _ in _sized_local_tiers(pipeline, device, host):
        pass


def predict_local_tiers(pipeline: Pipeline, device: DeviceProfile, host: HostCalibration) -> dict[str, DevicePrediction]:
    """Size and speed-test every on-device llama.cpp tier; refuse one that does not fit the device."""
    predictions = {}
    for tier, footprint in _sized_local_tiers(pipeline, device, host):
        backend = pipeline.backend(tier.name)
        runs = [backend.speed_test() for _ in range(SPEED_TEST_RUNS)]  # best of N: a busy moment is not the model's speed
        fastest = max(runs, key=lambda r: r.decode_tps)
        predictions[tier.name] = predict(device, footprint, host, HostSpeed(
            decode_tps=fastest.decode_tps, prefill_tps=max(r.prefill_tps for r in runs), cpu_share=fastest.cpu_share))
    return predictions


class Simulator:
    def __init__(self, pipeline: Pipeline, device: DeviceProfile, host: HostCalibration,
                 predictions: dict[str, DevicePrediction], output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        self.pipeline = pipeline
        self.spec: RoutingSpec = pipeline.spec
        self.device = device
        self.host = host
        self.predictions = predictions
        self.output_tokens = output_tokens
        self.unpredicted = {t.name: f"no speed model for the {t.backend} backend: its steps keep this host's latency "
                                    f"and its RAM fit is not checked"
                            for t in self.spec.tiers if t.on_device and t.name not in predictions}
        self.baseline_tier = self.spec.costliest_tier(output_tokens)

    def expected_cost(self, tier: str, input_tokens: int) -> float:
        """What answering costs on `tier` when it is not actually run (sweep, baseline), USD."""
        return self.spec.tier(tier).expected_usd(input_tokens, self.output_tokens)

    # -- time -------------------------------------------------------------------------------
    def router_device_ms(self, host_ms: float) -> float:
        """Routing is compute-bound (an encoder, or the SLM's prefill): scale by compute."""
        return host_ms * self.host.gflops / self.device.gflops

    def step_device_ms(self, step: dict) -> float:
        """A trace step's latency on the simulated device, ms: an on-device answer re-timed from its token
        counts at the device's predicted prefill and decode speeds, a cloud step as measured plus the
        device's network round trip.
        """
        tier = self.spec.tier(step["tier"])
        prediction = self.predictions.get(tier.name)
        if tier.on_device:
            if prediction is None or not step["ok"]:
                return step["latency_ms"]
            return 1000 * (step["input_tokens"] / prediction.prefill_tps + step["output_tokens"] / prediction.decode_tps)
        return step["latency_ms"] + self.device.network_rtt_ms

    # -- one request ------------------------------------------------------------------------
    def run(self, request: Request, truth: str | None, references: tuple[str, ...] = ()) -> Outcome:
        """One request through the whole pipeline (answers, confidence checks, escalations), with
        device latency, its cost and the baseline's (every request on the costliest tier), USD.
        Router-only runs go through runtime/batch instead (`summarize_routing`)."""
        baseline = self.expected_cost(self.baseline_tier.name, estimate_request_tokens(request))
        response = self.pipeline.handle(request)
        trace = response.trace.to_dict()
        decision = RouteDecision(trace["router"]["label"], trace["router"]["confidence"], trace["router"]["probabilities"],
                                 trace["router"]["raw"], trace["router"]["latency_ms"], trace["router"]["method"])
        steps = [{key: s[key] for key in ("tier", "purpose", "ok", "latency_ms", "input_tokens", "output_tokens",
                                           "cost_usd", "simulated", "error")} for s in trace["steps"]]
        for step in steps:
            step["device_ms"] = self.step_device_ms(step)
        router_ms = self.router_device_ms(decision.latency_ms)
        answers = [s for s in trace["steps"] if s["ok"] and s["purpose"] == "answer"]
        checks = [{"tier": c["tier"], "method": c["method"], "value": c["value"], "escalate": c["escalate"],
                   "answer": next((s["text"] for s in reversed(answers) if s["tier"] == c["tier"]), "")}
                  for c in trace["confidence"]]
        return Outcome(truth, decision, trace["policy"]["tier"], response.tier, escalated=bool(trace["escalations"]),
                       fell_back=bool(trace["fallbacks"]), failed=not response.ok, router_ms=router_ms, steps=steps,
                       latency_ms=router_ms + sum(s["device_ms"] for s in steps), host_latency_ms=trace["latency_ms"],
                       cost_usd=trace["cost_usd"], baseline_usd=baseline, references=references, checks=checks)

    def run_all(self, dataset: Dataset, advance: Callable[[], None] = lambda: None) -> list[Outcome]:
        """Every request of `dataset` through `run`, calling `advance` after each (the CLI's progress)."""
        outcomes = []
        for item in dataset.items:
            outcomes.append(self.run(item.request, item.tier, item.references))
            advance()
        return outcomes

    # -- what the report shows --------------------------------------------------------------
    def sweep(self, outcomes: list[Outcome], inputs: list[int], requests_per_day: float) -> list[dict]:
        """Cost vs complex requests kept on-device as the simple route's confidence bar moves.

        The same router decisions are re-routed at each threshold (the spec's own included, marked
        `current`). A request whose tier does not change keeps the cost it had in this run, so the
        current row equals the headline cost, escalations and confidence checks included; one that
        moves costs its new tier's expected answer plus, at the escalation rate this run saw on that
        tier, the next tier's.
        """
        local = {t.name for t in self.spec.tiers if t.on_device}
        current = simple_threshold(self.spec.policy)
        escalated = {t.name: share([o.escalated for o in outcomes if o.routed_tier == t.name]) or 0.0
                     for t in self.spec.tiers}

        def moved(tier: str, input_tokens: int) -> float:
            nxt = self.spec.next_tier(tier)
            extra = escalated[tier] * self.expected_cost(nxt, input_tokens) if nxt else 0.0
            return self.expected_cost(tier, input_tokens) + extra

        rows = []
        for threshold in sweep_thresholds(self.spec):
            policy: PolicySpec = with_simple_threshold(self.spec.policy, threshold)
            tiers = [choose_tier(o.decision, policy).tier for o in outcomes]
            cost = sum(o.cost_usd if t == o.routed_tier else moved(t, n)
                       for t, o, n in zip(tiers, outcomes, inputs)) / len(outcomes)
            complex_flags = [t in local for t, o in zip(tiers, outcomes) if o.truth == "complex"]
            rows.append({"simple_min_confidence": threshold,
                         "on_device": share([t in local for t in tiers]),
                         "complex_on_device": share(complex_flags),
                         "usd_per_day": cost * requests_per_day,
                         "current": threshold == current})
        return rows

    @staticmethod
    def failures(outcomes: list[Outcome]) -> dict[str, dict]:
        """Per tier: how many steps failed and the commonest reasons (an unreachable endpoint shows here)."""
        found: dict[str, dict] = {}
        for step in (s for o in outcomes for s in o.steps if not s["ok"]):
            entry = found.setdefault(step["tier"], {"count": 0, "reasons": {}})
            entry["count"] += 1
            entry["reasons"][step["error"]] = entry["reasons"].get(step["error"], 0) + 1
        return found

    def confidence_summary(self, outcomes: list[Outcome]) -> dict | None:
        """What the confidence check did to checked answers; with gold answers, how often the kept
        and the escalated ones were right (runtime/confidence/evaluate.py `is_right`)."""
        checks = [(c, o.references) for o in outcomes for c in o.checks]
        if not checks:
            return None
        gold = [(c, refs) for c, refs in checks if refs]
        kept = [is_right(c["answer"], refs) for c, refs in gold if not c["escalate"]]
        escalated = [is_right(c["answer"], refs) for c, refs in gold if c["escalate"]]
        return {"method": self.spec.confidence_check.method, "checked": len(checks),
                "kept_share": share([not c["escalate"] for c, _ in checks]), "with_references": len(gold),
                "right_overall": share(kept + escalated), "right_when_kept": share(kept),
                "right_when_escalated": share(escalated)}

    def _common(self, n: int, skipped: list[str], skipped_count: int) -> dict:
        """What both modes report the same way: size, skipped lines (runtime/data.py `skipped_lines`), device,
        host, predictions."""
        return {"n": n, "skipped_lines": skipped_lines(skipped_count, skipped), "device": self.device.model_dump(),
                "host": vars(self.host), "predictions": {tier: p.to_dict() for tier, p in self.predictions.items()},
                "unpredicted_tiers": self.unpredicted}

    def _cost(self, usd_per_request: float, baseline_per_request: float, requests_per_day: float) -> dict:
        day, baseline_day = usd_per_request * requests_per_day, baseline_per_request * requests_per_day
        return {
            "requests_per_day": requests_per_day,
            "prices": "per-tier prices from the routing spec",
            "usd_per_request": usd_per_request,
            "usd_per_day": day,
            "usd_per_month": day * DAYS_PER_MONTH,
            "baseline_tier": self.baseline_tier.name,
            "baseline_usd_per_day": baseline_day,
            "baseline_usd_per_month": baseline_day * DAYS_PER_MONTH,
            "savings": 1 - usd_per_request / baseline_per_request if baseline_per_request else 0.0,
            "assumed_output_tokens": {t.name: t.expected_output_tokens(self.output_tokens) for t in self.spec.tiers},
        }

    def summarize(self, outcomes: list[Outcome], dataset: Dataset, requests_per_day: float) -> dict:
        """The report's numbers (report.json) for a pipeline run: tier mix, routing quality on
        labelled lines, cost per request/day/month at `requests_per_day` vs the costliest-tier
        baseline (USD), latency per step and tier (ms, on the device), escalation and fallback rates,
        device predictions and the threshold sweep.
        """
        n = len(outcomes)
        names = [t.name for t in self.spec.tiers]
        local = {t.name for t in self.spec.tiers if t.on_device}
        inputs = [estimate_request_tokens(item.request) for item in dataset.items]
        labelled = [(o.truth, o.decision) for o in outcomes if o.truth is not None]
        by_tier = {name: sorted(o.latency_ms for o in outcomes if o.final_tier == name) for name in names}
        step_ms = {name: sorted(s["device_ms"] for o in outcomes for s in o.steps if s["tier"] == name and s["purpose"] == "answer")
                   for name in names}
        routing = evaluate([t for t, _ in labelled], [d for _, d in labelled], self.spec) if labelled else None
        return {
            "mode": "pipeline",
            **self._common(n, dataset.skipped, len(dataset.skipped)),
            "tier_mix": {
                "routed": {name: share([o.routed_tier == name for o in outcomes]) for name in names},
                "final": {name: share([o.final_tier == name for o in outcomes]) for name in names},
            },
            "tier_failures": self.failures(outcomes),
            "kept_on_device": share([o.final_tier in local for o in outcomes]),
            "routed_on_device": share([o.routed_tier in local for o in outcomes]),
            "confidence_check": self.confidence_summary(outcomes),
            "escalation_rate": share([o.escalated for o in outcomes]),
            "fallback_rate": share([o.fell_back for o in outcomes]),
            "failure_rate": share([o.failed for o in outcomes]),
            "routing": {key: routing[key] for key in LABEL_FIGURES} if routing else None,
            "training_overlap": training_overlap(head_info(self.spec.router, self.pipeline.base_dir),
                                                 [item.request for item in dataset.items]),
            "latency_ms": {
                "router": _p50_p95(sorted(o.router_ms for o in outcomes)),
                "end_to_end": _p50_p95(sorted(o.latency_ms for o in outcomes)),
                "end_to_end_by_final_tier": {name: _p50_p95(values) | {"n": len(values)} for name, values in by_tier.items()},
                "answer_step_by_tier": {name: _p50_p95(values) | {"n": len(values)} for name, values in step_ms.items()},
                "host_end_to_end": _p50_p95(sorted(o.host_latency_ms for o in outcomes)),
            },
            "latency_cdf_ms": {name: cdf_points(lambda q, v=values: percentile(v, q)) for name, values in by_tier.items()},
            "cost": self._cost(sum(o.cost_usd for o in outcomes) / n, sum(o.baseline_usd for o in outcomes) / n,
                               requests_per_day),
            "threshold_sweep": self.sweep(outcomes, inputs, requests_per_day),
        }

    def summarize_routing(self, tally: RouteTally, requests_per_day: float) -> dict:
        """The same report for a router-only run (runtime/batch/route.py `route_files` with
        `workload`): every figure from the merged tally, so memory does not grow with the workload.
        Router latencies are the host's scaled to the device (`router_device_ms`); end to end is the
        router alone; costs price each routed tier's expected answer (TierSpec.expected_usd)."""
        r = tally.routing
        if r.output_tokens != self.output_tokens:
            raise ValueError("the tally priced answers at another output length")
        scale = self.router_device_ms(1.0)
        names = [t.name for t in self.spec.tiers]

        def device_ms(q: float, tier: str | None = None) -> float | None:
            value = r.latency_percentile(q, tier)
            return None if value is None else value * scale

        figures = r.figures()
        routed = {name: r.tiers[name] / r.n if r.n else None for name in names}
        on_device = r.on_device[0] / r.n if r.n else None
        head = trained_on(head_info(self.spec.router, self.pipeline.base_dir))
        by_tier = {name: {"p50": device_ms(50, name), "p95": device_ms(95, name), "n": r.tiers[name]} for name in names}
        return {
            "mode": "router-only",
            **self._common(r.n, tally.skipped_examples, tally.skipped),
            "tier_mix": {"routed": routed, "final": dict(routed)},
            "tier_failures": {},
            "kept_on_device": on_device,
            "routed_on_device": on_device,
            "confidence_check": None,
            "escalation_rate": None,
            "fallback_rate": None,
            "failure_rate": None,
            "routing": {**{key: figures[key] for key in LABEL_FIGURES}, "n": r.labelled} if r.labelled else None,
            "training_overlap": None if head is None or not r.n else
            {"requests": r.n, "seen": tally.seen_in_training, "share": tally.seen_in_training / r.n},
            "latency_ms": {
                "router": {"p50": device_ms(50), "p95": device_ms(95)},
                "end_to_end": {"p50": device_ms(50), "p95": device_ms(95)},
                "end_to_end_by_final_tier": by_tier,
                "answer_step_by_tier": {name: {"p50": None, "p95": None, "n": 0} for name in names},
                "host_end_to_end": {"p50": r.latency_percentile(50), "p95": r.latency_percentile(95)},
            },
            "latency_cdf_ms": {name: cdf_points(lambda q, tier=name: device_ms(q, tier)) for name in names},
            "cost": self._cost(figures["usd_per_request"] or 0.0, figures["baseline_usd_per_request"] or 0.0,
                               requests_per_day),
            "threshold_sweep": [{"simple_min_confidence": row["simple_min_confidence"], "on_device": row["on_device"],
                                 "complex_on_device": row["complex_on_device"],
                                 "usd_per_day": (row["usd_per_request"] or 0.0) * requests_per_day,
                                 "current": row["current"]} for row in figures["threshold_sweep"]],
        }


def cdf_points(percentile_of: Callable[[float], float | None]) -> list[list[float]]:
    """A latency CDF as at most CDF_POINTS [ms, share of requests ≤ ms] steps, from a nearest-rank
    `percentile_of(q)` (q 0-100; None when there are no latencies: no steps)."""
    points: list[list[float]] = []
    for step in range(1, CDF_POINTS + 1):
        value = percentile_of(100 * step / CDF_POINTS)
        if value is None:
            return []
        if points and points[-1][0] == value:
            points[-1][1] = step / CDF_POINTS
        else:
            points.append([value, step / CDF_POINTS])
    return points


def _p50_p95(sorted_values: list[float]) -> dict:
    return {"p50": percentile(sorted_values, 50), "p95": percentile(sorted_values, 95)}
