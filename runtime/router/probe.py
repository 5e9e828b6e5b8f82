"""The `probe` router: the on-device SLM is still the router, through a small trained head on its
own mean-pooled hidden state (llama.cpp embedding mode). The head is tied to the model file it
was trained on: its name and size are checked at load."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.prompts import request_router_input
from slmkit.runtime.request import Request
from slmkit.runtime.router.classifier import classifier_text
from slmkit.runtime.router.decision import RouteDecision, decision_from_logits
from slmkit.runtime.router.head import load_head
from slmkit.runtime.spec import RouterSpec

if TYPE_CHECKING:
    from slmkit.runtime.backends.base import Backend
    from slmkit.runtime.router import Router

PROBE_FEATURES = "probe-mean-v1"


def model_identity(path: Path) -> dict:
    """What identifies the model a probe head was fitted on: file name and size in bytes."""
    return {"model_file": path.name, "model_bytes": path.stat().st_size}


def probe_vector(backend, spec: RouterSpec, request: Request) -> np.ndarray:
    """L2-normalized hidden state of the truncated request (the classifier's text)."""
    vector = backend.embedding(classifier_text(*request_router_input(request, spec.truncation)))
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class ProbeRouter:
    method = "probe"

    @classmethod
    def from_spec(cls, spec: RouterSpec, base_dir: Path, backend: Backend | None) -> Router:
        """The registry's constructor (runtime/plugins.py, `slmkit.routers`)."""
        return cls(spec, base_dir, backend)

    def __init__(self, spec: RouterSpec, base_dir: Path, backend) -> None:
        if not hasattr(backend, "embedding"):
            raise SlmkitError(f"Router tier {spec.tier} runs on {backend.name}, which exposes no hidden state; use llama.cpp.")
        self.spec = spec
        self.backend = backend
        self.head = load_head(base_dir / spec.weights)
        if self.head.features != PROBE_FEATURES:
            raise SlmkitError(f"{spec.weights} is a {self.head.features} head, not a probe head.")
        trained_on = {k: (self.head.info or {}).get(k) for k in ("model_file", "model_bytes")}
        if trained_on != model_identity(backend.path):
            raise SlmkitError(f"{spec.weights} was trained on {trained_on['model_file']} ({trained_on['model_bytes']} bytes); "
                              f"tier {spec.tier} runs {backend.path.name}.", hint="Retrain with `slmkit router train --method probe`.")

    def decide(self, request: Request) -> RouteDecision:
        """The linear head over the model's normalized mean-pooled hidden state. Raises SlmkitError when
        the head was fitted on a model of another hidden size.
        """
        start = time.perf_counter()
        vector = probe_vector(self.backend, self.spec, request)
        if vector.shape[0] != self.head.weights.shape[0]:
            raise SlmkitError(f"The probe head expects {self.head.weights.shape[0]} hidden units; the model gives {vector.shape[0]}.")
        logits = self.head.logits({}, vector)
        decision = decision_from_logits(self.head.labels, [float(x) for x in logits], self.spec.temperature, self.method)
        decision.latency_ms = (time.perf_counter() - start) * 1000
        return decision
