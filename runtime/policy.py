"""The tier policy: a pure function from a router decision to a tier name.

Pinned by vectors/policy.jsonl; the simulator's threshold sweep calls it with edited policies.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import PolicySpec


@dataclass(frozen=True)
class PolicyChoice:
    tier: str
    reason: str


def choose_tier(decision: RouteDecision, policy: PolicySpec) -> PolicyChoice:
    """Route by label; unsure (confidence < the route's minimum) or unreadable goes to the safe tier."""
    if decision.label is None:
        return PolicyChoice(policy.unparsed_tier, "router output unparsable")
    route = next((r for r in policy.routes if r.label == decision.label), None)
    if route is None:
        return PolicyChoice(policy.unparsed_tier, f"no route for label {decision.label!r}")
    if decision.confidence < route.min_confidence:
        return PolicyChoice(policy.low_confidence_tier,
                            f"{decision.label} with confidence {decision.confidence:.3f} < {route.min_confidence}")
    return PolicyChoice(route.tier, f"{decision.label} with confidence {decision.confidence:.3f}")
