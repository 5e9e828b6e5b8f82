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


def macro_f1(truth: list[str], predicted: list[str | None], labels: list[str]) -> float:
    """Unweighted mean over `labels` of per-label F1 (2TP / (2TP + FP + FN), 0 for a label never
    predicted right); a None prediction counts as wrong for every label.
    """
    scores = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def with_simple_threshold(policy: PolicySpec, threshold: float) -> PolicySpec:
    """`policy` with the `simple` route's min_confidence set to `threshold` (a sweep point)."""
    routes = [r.model_copy(update={"min_confidence": threshold}) if r.label == "simple" else r for r in policy.routes]
    return policy.model_copy(update={"routes": routes})


def on_device_flags(decisions: list[RouteDecision], spec: RoutingSpec, policy: PolicySpec | None = None) -> list[bool]:
    """Per decision: does the policy (default: the spec's) send it to an on-device tier?"""
    local = {t.name for t in spec.tiers if t.on_device}
    return [choose_tier(d, policy or spec.policy).tier in local for d in decisions]


def relative_cost(decisions: list[RouteDecision], spec: RoutingSpec, policy: PolicySpec,
                  input_tokens: list[int], output_tokens: int = 200) -> float:
    """Cost of routing as `policy` says, as a share of sending everything to the priciest tier."""
    priciest = max(spec.tiers, key=lambda t: t.price_in_per_mtok + t.price_out_per_mtok)

    def price(tier_name: str, n_in: int) -> float:
        tier = spec.tier(tier_name)
        return n_in * tier.price_in_per_mtok + output_tokens * tier.price_out_per_mtok

    routed = sum(price(choose_tier(d, policy).tier, n) for d, n in zip(decisions, input_tokens))
    baseline = sum(price(priciest.name, n) for n in input_tokens)
    return routed / baseline if baseline else 0.0


def evaluate(truth: list[str], decisions: list[RouteDecision], spec: RoutingSpec,
             input_tokens: list[int] | None = None) -> dict:
    """Everything `router eval --report` writes; keys are a stable contract."""
    labels = list(spec.router.labels)
    predicted = [d.label for d in decisions]
    on_device = on_device_flags(decisions, spec)
    input_tokens = input_tokens or [500] * len(truth)
    confusion = {t: {p or "unparsed": sum(a == t and b == p for a, b in zip(truth, predicted)) for p in [*labels, None]}
                 for t in labels}
    tiers = [choose_tier(d, spec.policy).tier for d in decisions]
    sweep = []
    for threshold in SWEEP_THRESHOLDS:
        policy = with_simple_threshold(spec.policy, threshold)
        flags = on_device_flags(decisions, spec, policy)
        sweep.append({
            "simple_min_confidence": threshold,
            "on_device": share(flags),
            "simple_kept_on_device": share([f for f, t in zip(flags, truth) if t == "simple"]),
            "complex_on_device": share([f for f, t in zip(flags, truth) if t == "complex"]),
            "cost_share": relative_cost(decisions, spec, policy, input_tokens),
        })
    latencies = sorted(d.latency_ms for d in decisions)
    return {
        "n": len(truth),
        "method": spec.router.method,
        "accuracy": share([a == b for a, b in zip(truth, predicted)]),
        "macro_f1": macro_f1(truth, predicted, labels),
        "unparsed": share([p is None for p in predicted]),
        "confusion": confusion,
        "simple_kept_on_device": share([f for f, t in zip(on_device, truth) if t == "simple"]),
        "complex_on_device": share([f for f, t in zip(on_device, truth) if t == "complex"]),
        "medium_on_device": share([f for f, t in zip(on_device, truth) if t == "medium"]),
        "tier_mix": {t.name: share([x == t.name for x in tiers]) for t in spec.tiers},
        "cost_share": relative_cost(decisions, spec, spec.policy, input_tokens),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "threshold_sweep": sweep,
    }


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
    input_tokens = input_tokens or [500] * len(truth)
    result = {}
    for group in sorted(set(groups)):
        index = [i for i, g in enumerate(groups) if g == group]
        figures = evaluate([truth[i] for i in index], [decisions[i] for i in index], spec, [input_tokens[i] for i in index])
        result[group] = {key: figures[key] for key in GROUP_FIGURES}
    return result
