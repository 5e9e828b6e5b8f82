"""The `classifier` router: hashed n-grams + length through a trained linear head (under 1 ms)."""

from __future__ import annotations

import time
from pathlib import Path

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.prompts import router_input
from slmkit.runtime.request import Request
from slmkit.runtime.router import features
from slmkit.runtime.router.decision import RouteDecision, decision_from_logits
from slmkit.runtime.router.head import LinearHead, load_head
from slmkit.runtime.spec import RouterSpec


def classifier_text(system: str, user: str) -> str:
    """The truncated request as the featurizer reads it (system and user on separate lines)."""
    return f"{system}\n{user}" if system else user


def request_features(head: LinearHead, spec: RouterSpec, system: str, user: str) -> tuple[dict[int, float], list[float]]:
    system_part, user_part = router_input(system, user, spec.truncation)
    return features.hashed(classifier_text(system_part, user_part), head.buckets), features.dense(system, user)


class ClassifierRouter:
    method = "classifier"

    def __init__(self, spec: RouterSpec, base_dir: Path) -> None:
        self.spec = spec
        self.head = load_head(base_dir / spec.weights)
        if self.head.features != "hashed-v1" or tuple(self.head.dense) != features.DENSE_FEATURES:
            raise SlmkitError(f"{spec.weights} was trained on features {self.head.features} {self.head.dense}; "
                              f"this runtime computes hashed-v1 {features.DENSE_FEATURES}.")
        if sorted(self.head.labels) != sorted(spec.labels):
            raise SlmkitError(f"{spec.weights} predicts {self.head.labels}; the spec's labels are {spec.labels}.")

    def decide(self, request: Request) -> RouteDecision:
        start = time.perf_counter()
        sparse, dense = request_features(self.head, self.spec, request.system, request.user)
        logits = self.head.logits(sparse, dense)
        decision = decision_from_logits(self.head.labels, [float(x) for x in logits], self.spec.temperature, self.method)
        decision.latency_ms = (time.perf_counter() - start) * 1000
        return decision
