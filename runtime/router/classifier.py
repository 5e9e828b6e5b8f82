"""The `classifier` router: hashed n-grams + length through a trained linear head (under 1 ms)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.prompts import conversation_user, request_router_input
from slmkit.runtime.request import Request
from slmkit.runtime.router import features
from slmkit.runtime.router.decision import RouteDecision, decision_from_grouped_logits, decision_from_logits
from slmkit.runtime.router.encoder import SentenceEncoder
from slmkit.runtime.router.head import load_head
from slmkit.runtime.spec import RouterSpec

if TYPE_CHECKING:
    from slmkit.runtime.backends.base import Backend
    from slmkit.runtime.router import Router


def classifier_text(system: str, user: str) -> str:
    """The truncated request as the featurizer reads it (system and user on separate lines)."""
    return f"{system}\n{user}" if system else user


HASHED = "hashed-v1"
HASHED_AND_ENCODER = "hashed-v1+encoder"


def request_features(buckets: int, spec: RouterSpec, request: Request,
                     encoder: SentenceEncoder | None = None) -> tuple[dict[int, float], list[float]]:
    """Hashed n-grams of the truncated text; dense = length numbers of the whole user text read
    (+ the encoder's vector of the truncated text)."""
    text = classifier_text(*request_router_input(request, spec.truncation))
    dense = features.dense(request.system, conversation_user(request, spec.truncation))
    if encoder is not None:
        dense.extend(float(x) for x in encoder.encode(text))
    return features.hashed(text, buckets), dense


class ClassifierRouter:
    method = "classifier"

    @classmethod
    def from_spec(cls, spec: RouterSpec, base_dir: Path, backend: Backend | None) -> Router:
        """The registry's constructor (runtime/plugins.py, `slmkit.routers`): needs no tier engine."""
        return cls(spec, base_dir)

    def __init__(self, spec: RouterSpec, base_dir: Path) -> None:
        self.spec = spec
        self.head = load_head(base_dir / spec.weights)
        if self.head.features not in (HASHED, HASHED_AND_ENCODER) or tuple(self.head.dense) != features.DENSE_FEATURES:
            raise SlmkitError(f"{spec.weights} was trained on features {self.head.features} {self.head.dense}; "
                              f"this runtime computes {HASHED}[+encoder] {features.DENSE_FEATURES}.")
        groups = self.head.label_groups or {label: label for label in self.head.labels}
        if sorted(groups) != sorted(self.head.labels) or sorted(set(groups.values())) != sorted(spec.labels):
            raise SlmkitError(f"{spec.weights} predicts {sorted(set(groups.values()))} (through {self.head.labels}); "
                              f"the spec's labels are {spec.labels}.")
        self.groups = groups
        self.encoder = None
        if self.head.features == HASHED_AND_ENCODER:
            if not spec.encoder:
                raise SlmkitError(f"{spec.weights} was trained with a sentence encoder; set router.encoder in the spec.")
            self.encoder = SentenceEncoder(base_dir / spec.encoder)
        expected = self.head.buckets + len(features.DENSE_FEATURES) + (self.encoder.dim if self.encoder else 0)
        if self.head.weights.shape[0] != expected:
            raise SlmkitError(f"{spec.weights} has {self.head.weights.shape[0]} input weights; these features give {expected}.")

    def decide(self, request: Request) -> RouteDecision:
        """Hashed n-gram features (plus the sentence encoder's vector when the head has one) through the
        linear head, softmax at the spec's temperature; a head over finer labels (categories) is summed
        into the spec's labels first.
        """
        start = time.perf_counter()
        sparse, dense = request_features(self.head.buckets, self.spec, request, self.encoder)
        logits = self.head.logits(sparse, dense)
        values = [float(x) for x in logits]
        if self.head.label_groups is None:
            decision = decision_from_logits(self.head.labels, values, self.spec.temperature, self.method)
        else:
            decision = decision_from_grouped_logits(self.spec.labels, self.head.labels, values, self.groups,
                                                    self.spec.temperature, self.method)
        decision.latency_ms = (time.perf_counter() - start) * 1000
        return decision
