"""Router quality under a policy: what `slmkit router eval` and the simulator report.

Besides accuracy, the two numbers that matter for money and quality: the share of simple
requests kept on-device (savings) and the share of complex ones wrongly kept on-device (harm).
"""

from __future__ import annotations

from slmkit.runtime.policy import choose_tier
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import PolicySpec, RoutingSpec

SWEEP_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


def share(flags: list[bool]) -> float | None:
    """The fraction of True flags (None for none)."""
    return sum(flags) / len(flags) if flags else None


def with_simple_threshold(policy: PolicySpec, threshold: float) -> PolicySpec:
    """`policy` with the `simple` route's min_confidence set to `threshold` (a sweep point)."""
    routes = [r.model_copy(update={"min_confidence": threshold}) if r.label == "simple" else r for r in policy.routes]
    return policy.model_copy(update={"routes": routes})


def sweep_thresholds(spec: RoutingSpec) -> tuple[float, ...]:
    """The sweep's points: SWEEP_THRESHOLDS plus the spec's own simple-route threshold."""
    current = simple_threshold(spec.policy)
    return tuple(sorted(set(SWEEP_THRESHOLDS) | ({current} if current is not None else set())))


def simple_threshold(policy: PolicySpec) -> float | None:
    """The `simple` route's min_confidence (None when no route is labelled simple)."""
    return next((r.min_confidence for r in policy.routes if r.label == "simple"), None)


# Latencies are counted in bins of this many milliseconds, so a tally's memory is bounded by the range
# of latencies seen, not by how many requests were routed (percentiles exact to the bin).
LATENCY_BIN_MS = 0.01
DEFAULT_OUTPUT_TOKENS = 200   # answer length assumed for a tier that is priced without being run and models none
STATE_FORMAT = 2              # bumped when to_state() changes: a resumed job refuses tallies of another format


class RoutingTally:
    """Everything `evaluate()` reports, counted one decision at a time in memory independent of how
    many decisions are added (counts and sums; latencies in LATENCY_BIN_MS bins per policy tier), and
    mergeable, so batch workers tally their share and the driver adds the tallies up (`merge`).

    Costs are USD at each tier's expected answer (TierSpec.expected_usd, `output_tokens` where a tier
    models no answer length) against the costliest tier (RoutingSpec.costliest_tier), priced from
    integer request and token counts, so a job's figures do not depend on how it was split.
    `truth` None (an unlabelled request) counts toward the tier mix, cost and latency only.
    """

    def __init__(self, spec: RoutingSpec, thresholds: tuple[float, ...] | None = None,
                 output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        self.spec = spec
        self.labels = list(spec.router.labels)
        self.output_tokens = output_tokens
        self.local = {t.name for t in spec.tiers if t.on_device}
        self.thresholds = sweep_thresholds(spec) if thresholds is None else tuple(thresholds)
        self.policies = [spec.policy] + [with_simple_threshold(spec.policy, t) for t in self.thresholds]
        self.baseline = spec.costliest_tier(output_tokens)
        self.n = self.labelled = self.correct = self.unparsed = 0
        self.confusion = {t: {p: 0 for p in [*self.labels, "unparsed"]} for t in self.labels}
        self.truth_counts = {t: 0 for t in self.labels}
        # per policy (the spec's first, then one per sweep threshold)
        self.on_device = [0 for _ in self.policies]
        self.on_device_by_truth = [{t: 0 for t in self.labels} for _ in self.policies]
        self.routed = [{t.name: 0 for t in spec.tiers} for _ in self.policies]          # requests per tier
        self.routed_tokens = [{t.name: 0 for t in spec.tiers} for _ in self.policies]   # their input tokens
        self.latency_bins: dict[str, dict[int, int]] = {t.name: {} for t in spec.tiers}   # by the spec policy's tier

    @property
    def tiers(self) -> dict[str, int]:
        """Requests per tier under the spec's own policy."""
        return self.routed[0]

    def routed_usd(self, index: int = 0) -> float:
        """USD of every request added, answered on the tier policy `index` (0: the spec's) routes it to."""
        return sum(self.spec.tier(name).expected_usd(self.routed_tokens[index][name], self.output_tokens, count)
                   for name, count in self.routed[index].items())

    def baseline_usd(self) -> float:
        """USD of every request added, answered on the costliest tier."""
        return self.baseline.expected_usd(sum(self.routed_tokens[0].values()), self.output_tokens, self.n)

    def add(self, truth: str | None, decision: RouteDecision, input_tokens: int = 500) -> None:
        """Count one decision (`truth` its label, or None) for a request of `input_tokens` tokens."""
        self.n += 1
        predicted = decision.label
        self.unparsed += predicted is None
        if truth is not None:
            self.labelled += 1
            self.correct += truth == predicted
            if truth in self.confusion:
                self.confusion[truth][predicted if predicted is not None else "unparsed"] += 1
                self.truth_counts[truth] += 1
        for index, policy in enumerate(self.policies):
            tier = choose_tier(decision, policy).tier
            if index == 0:
                bins = self.latency_bins[tier]
                bin_ = round(decision.latency_ms / LATENCY_BIN_MS)
                bins[bin_] = bins.get(bin_, 0) + 1
            self.routed[index][tier] += 1
            self.routed_tokens[index][tier] += input_tokens
            if tier in self.local:
                self.on_device[index] += 1
                if truth in self.truth_counts:
                    self.on_device_by_truth[index][truth] += 1

    def merge(self, other: RoutingTally) -> RoutingTally:
        """Add `other`'s counts (a tally of the same spec and thresholds) into this one; returns self."""
        if other.thresholds != self.thresholds or other.labels != self.labels or other.tiers.keys() != self.tiers.keys():
            raise ValueError("tallies of different specs or sweeps cannot be merged")
        for name in ("n", "labelled", "correct", "unparsed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for t, row in other.confusion.items():
            for p, count in row.items():
                self.confusion[t][p] += count
        for t, count in other.truth_counts.items():
            self.truth_counts[t] += count
        for index in range(len(self.policies)):
            self.on_device[index] += other.on_device[index]
            for t, count in other.on_device_by_truth[index].items():
                self.on_device_by_truth[index][t] += count
            for tier in self.routed[index]:
                self.routed[index][tier] += other.routed[index][tier]
                self.routed_tokens[index][tier] += other.routed_tokens[index][tier]
        for tier in self.latency_bins:
            bins = self.latency_bins[tier]
            for bin_, hits in other.latency_bins[tier].items():
                bins[bin_] = bins.get(bin_, 0) + hits
        return self

    STATE = ("n", "labelled", "correct", "unparsed", "confusion", "truth_counts", "on_device", "on_device_by_truth",
             "routed", "routed_tokens")

    def to_state(self) -> dict:
        """The counts as JSON-able values (a batch shard's tally file); `from_state` reads them back."""
        return {**{name: getattr(self, name) for name in self.STATE}, "format": STATE_FORMAT,
                "thresholds": list(self.thresholds), "output_tokens": self.output_tokens,
                "latency_bins": {tier: {str(k): v for k, v in bins.items()} for tier, bins in self.latency_bins.items()}}

    @classmethod
    def from_state(cls, spec: RoutingSpec, state: dict) -> RoutingTally:
        """A tally of `spec` holding the counts of `to_state()`. Raises ValueError when they were
        counted for another spec, sweep or tally format."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("the tally was written by another slmkit version")
        tally = cls(spec, tuple(state["thresholds"]), state["output_tokens"])
        if (sorted(state["truth_counts"]) != sorted(tally.labels) or len(state["on_device"]) != len(tally.policies)
                or sorted(state["routed"][0]) != sorted(tally.tiers)):
            raise ValueError("the tally was counted for another spec")
        for name in cls.STATE:
            setattr(tally, name, state[name])
        tally.latency_bins = {tier: {int(k): v for k, v in bins.items()} for tier, bins in state["latency_bins"].items()}
        return tally

    def _kept(self, index: int, truth: str) -> float | None:
        total = self.truth_counts.get(truth, 0)
        return self.on_device_by_truth[index][truth] / total if total else None

    def latency_percentile(self, q: float, tier: str | None = None) -> float | None:
        """Nearest-rank percentile `q` (0-100) of the router latencies added (those routed to `tier`,
        or all), in ms, exact to LATENCY_BIN_MS; None when none were added."""
        bins: dict[int, int] = {}
        for name, counts in self.latency_bins.items():
            if tier is None or name == tier:
                for bin_, hits in counts.items():
                    bins[bin_] = bins.get(bin_, 0) + hits
        total = sum(bins.values())
        if not total:
            return None
        rank, seen = max(1, -(-total * q // 100)), 0
        for bin_ in sorted(bins):
            seen += bins[bin_]
            if seen >= rank:
                return round(bin_ * LATENCY_BIN_MS, 6)
        raise AssertionError("unreachable: bins sum to their total")

    def figures(self) -> dict:
        """`evaluate()`'s figures over everything added (shares None where nothing was counted)."""
        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None

        current = simple_threshold(self.spec.policy)
        baseline = self.baseline_usd()
        confusion_predicted = [[self.confusion[t][p] for p in self.labels] for t in self.labels]
        f1 = []
        for i, label in enumerate(self.labels):
            tp = confusion_predicted[i][i]
            fp = sum(confusion_predicted[j][i] for j in range(len(self.labels)) if j != i)
            fn = self.truth_counts[label] - tp
            f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        sweep = [{
            "simple_min_confidence": threshold,
            "on_device": ratio(self.on_device[i + 1], self.n),
            "simple_kept_on_device": self._kept(i + 1, "simple"),
            "complex_on_device": self._kept(i + 1, "complex"),
            "cost_share": ratio(self.routed_usd(i + 1), baseline) or 0.0,
            "usd_per_request": ratio(self.routed_usd(i + 1), self.n),
            "current": threshold == current,
        } for i, threshold in enumerate(self.thresholds)]
        return {
            "n": self.n,
            "method": self.spec.router.method,
            "accuracy": ratio(self.correct, self.labelled),
            "macro_f1": sum(f1) / len(f1),
            "unparsed": ratio(self.unparsed, self.n),
            "confusion": {t: dict(row) for t, row in self.confusion.items()},
            "simple_kept_on_device": self._kept(0, "simple"),
            "complex_on_device": self._kept(0, "complex"),
            "medium_on_device": self._kept(0, "medium"),
            "tier_mix": {t.name: ratio(self.tiers.get(t.name, 0), self.n) for t in self.spec.tiers},
            "cost_share": ratio(self.routed_usd(), baseline) or 0.0,
            "usd_per_request": ratio(self.routed_usd(), self.n),
            "baseline_tier": self.baseline.name,
            "baseline_usd_per_request": ratio(baseline, self.n),
            "latency_ms": {"p50": self.latency_percentile(50), "p95": self.latency_percentile(95)},
            "threshold_sweep": sweep,
        }


def evaluate(truth: list[str], decisions: list[RouteDecision], spec: RoutingSpec,
             input_tokens: list[int] | None = None) -> dict:
    """Everything `router eval --report` writes (a RoutingTally of the decisions); keys are a stable
    contract. `input_tokens` defaults to 500 per request; latencies are exact to LATENCY_BIN_MS."""
    tally = RoutingTally(spec)
    for index, (label, decision) in enumerate(zip(truth, decisions)):
        tally.add(label, decision, input_tokens[index] if input_tokens else 500)
    return tally.figures()


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation, the same in every port)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


GROUP_FIGURES = ("n", "accuracy", "simple_kept_on_device", "complex_on_device", "medium_on_device", "confusion")


def by_group(truth: list[str], decisions: list[RouteDecision], spec: RoutingSpec, groups: list[str],
             input_tokens: list[int] | None = None) -> dict[str, dict]:
    """`evaluate()`'s main figures (`GROUP_FIGURES`) per group, e.g. per source: group -> figures,
    groups sorted by name. A group lacking a tier has None for that tier's share."""
    tallies: dict[str, RoutingTally] = {}
    for index, (label, decision, group) in enumerate(zip(truth, decisions, groups)):
        tally = tallies.setdefault(group, RoutingTally(spec))
        tally.add(label, decision, input_tokens[index] if input_tokens else 500)
    return {group: {key: value for key, value in tallies[group].figures().items() if key in GROUP_FIGURES}
            for group in sorted(tallies)}
