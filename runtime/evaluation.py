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


# Latencies are counted in bins of this many milliseconds, so a tally's memory is bounded by the range
# of latencies seen, not by how many requests were routed (percentiles exact to the bin).
LATENCY_BIN_MS = 0.01


class RoutingTally:
    """Everything `evaluate()` reports, counted one decision at a time in memory independent of how
    many decisions are added (counts and sums; latencies in LATENCY_BIN_MS bins), and mergeable, so
    batch workers tally their share and the driver adds the tallies up (`merge`).

    `truth` None (an unlabelled request) counts toward the tier mix, cost and latency only.
    """

    def __init__(self, spec: RoutingSpec, thresholds: tuple[float, ...] = SWEEP_THRESHOLDS,
                 output_tokens: int = 200) -> None:
        self.spec = spec
        self.labels = list(spec.router.labels)
        self.output_tokens = output_tokens
        self.local = {t.name for t in spec.tiers if t.on_device}
        self.policies = [spec.policy] + [with_simple_threshold(spec.policy, t) for t in thresholds]
        self.thresholds = thresholds
        priciest = max(spec.tiers, key=lambda t: t.price_in_per_mtok + t.price_out_per_mtok)
        self.priciest = priciest.name
        self.n = self.labelled = self.correct = self.unparsed = 0
        self.confusion = {t: {p: 0 for p in [*self.labels, "unparsed"]} for t in self.labels}
        self.truth_counts = {t: 0 for t in self.labels}
        # per policy (the spec's first, then one per sweep threshold)
        self.on_device = [0 for _ in self.policies]
        self.on_device_by_truth = [{t: 0 for t in self.labels} for _ in self.policies]
        self.routed_cost = [0.0 for _ in self.policies]
        self.baseline_cost = 0.0
        self.tiers = {t.name: 0 for t in spec.tiers}
        self.latency_bins: dict[int, int] = {}

    def _price(self, tier_name: str, n_in: int) -> float:
        tier = self.spec.tier(tier_name)
        return n_in * tier.price_in_per_mtok + self.output_tokens * tier.price_out_per_mtok

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
        self.baseline_cost += self._price(self.priciest, input_tokens)
        for index, policy in enumerate(self.policies):
            tier = choose_tier(decision, policy).tier
            if index == 0:
                self.tiers[tier] = self.tiers.get(tier, 0) + 1
            self.routed_cost[index] += self._price(tier, input_tokens)
            if tier in self.local:
                self.on_device[index] += 1
                if truth in self.truth_counts:
                    self.on_device_by_truth[index][truth] += 1
        bin_ = round(decision.latency_ms / LATENCY_BIN_MS)
        self.latency_bins[bin_] = self.latency_bins.get(bin_, 0) + 1

    def merge(self, other: RoutingTally) -> RoutingTally:
        """Add `other`'s counts (a tally of the same spec and thresholds) into this one; returns self."""
        if other.thresholds != self.thresholds or other.labels != self.labels:
            raise ValueError("tallies of different specs or sweeps cannot be merged")
        for name in ("n", "labelled", "correct", "unparsed", "baseline_cost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for t, row in other.confusion.items():
            for p, count in row.items():
                self.confusion[t][p] += count
        for t, count in other.truth_counts.items():
            self.truth_counts[t] += count
        for index in range(len(self.policies)):
            self.on_device[index] += other.on_device[index]
            self.routed_cost[index] += other.routed_cost[index]
            for t, count in other.on_device_by_truth[index].items():
                self.on_device_by_truth[index][t] += count
        for tier, count in other.tiers.items():
            self.tiers[tier] = self.tiers.get(tier, 0) + count
        for bin_, count in other.latency_bins.items():
            self.latency_bins[bin_] = self.latency_bins.get(bin_, 0) + count
        return self

    STATE = ("n", "labelled", "correct", "unparsed", "confusion", "truth_counts", "on_device", "on_device_by_truth",
             "routed_cost", "baseline_cost", "tiers")

    def to_state(self) -> dict:
        """The counts as JSON-able values (a batch shard's tally file); `from_state` reads them back."""
        return {**{name: getattr(self, name) for name in self.STATE}, "thresholds": list(self.thresholds),
                "output_tokens": self.output_tokens, "latency_bins": {str(k): v for k, v in self.latency_bins.items()}}

    @classmethod
    def from_state(cls, spec: RoutingSpec, state: dict) -> RoutingTally:
        """A tally of `spec` holding the counts of `to_state()`. Raises ValueError when they were
        counted for other labels or sweep thresholds."""
        tally = cls(spec, tuple(state["thresholds"]), state["output_tokens"])
        if sorted(state["truth_counts"]) != sorted(tally.labels) or len(state["on_device"]) != len(tally.policies):
            raise ValueError("the tally was counted for another spec")
        for name in cls.STATE:
            setattr(tally, name, state[name])
        tally.latency_bins = {int(k): v for k, v in state["latency_bins"].items()}
        return tally

    def _kept(self, index: int, truth: str) -> float | None:
        total = self.truth_counts.get(truth, 0)
        return self.on_device_by_truth[index][truth] / total if total else None

    def latency_percentile(self, q: float) -> float | None:
        """Nearest-rank percentile `q` (0-100) of the latencies added, in ms, exact to LATENCY_BIN_MS."""
        if not self.n:
            return None
        rank, seen = max(1, -(-self.n * q // 100)), 0
        for bin_ in sorted(self.latency_bins):
            seen += self.latency_bins[bin_]
            if seen >= rank:
                return round(bin_ * LATENCY_BIN_MS, 6)
        raise AssertionError("unreachable: bins sum to n")

    def figures(self) -> dict:
        """`evaluate()`'s figures over everything added (shares None where nothing was counted)."""
        def ratio(a: float, b: float) -> float | None:
            return a / b if b else None

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
            "cost_share": self.routed_cost[i + 1] / self.baseline_cost if self.baseline_cost else 0.0,
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
            "cost_share": self.routed_cost[0] / self.baseline_cost if self.baseline_cost else 0.0,
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
