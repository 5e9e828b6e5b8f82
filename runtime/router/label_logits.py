"""The `label_logits` router: one forward pass of the local model, read the label tokens' logits.

The instruction before the first placeholder never changes, so it is tokenized on its own and
stays in the backend's KV cache; each request evaluates only its own tokens.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.prompts import fill, request_router_input
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision, decision_from_logits
from slmkit.runtime.spec import RouterSpec

if TYPE_CHECKING:
    from slmkit.runtime.backends.base import Backend
    from slmkit.runtime.router import Router


def split_prompt(template: str) -> tuple[str, str]:
    """(fixed prefix, per-request rest): the template cut at its first placeholder."""
    match = re.search(r"\{(system|user)\}", template)
    cut = match.start() if match else len(template)
    return template[:cut], template[cut:]


class LabelLogitsRouter:
    method = "label_logits"

    @classmethod
    def from_spec(cls, spec: RouterSpec, base_dir: Path, backend: Backend | None) -> Router:
        """The registry's constructor (runtime/plugins.py, `slmkit.routers`)."""
        return cls(spec, backend)

    def __init__(self, spec: RouterSpec, backend) -> None:
        if not hasattr(backend, "next_token_logits"):
            raise SlmkitError(f"Router tier {spec.tier} runs on {backend.name}, which cannot score labels; use llama.cpp.")
        self.spec = spec
        self.backend = backend
        self.prefix, self.rest = split_prompt(spec.prompt)
        self.label_ids = [backend.tokenize(spec.label_separator + label, add_bos=False)[0] for label in spec.labels]
        if len(set(self.label_ids)) != len(self.label_ids):
            raise SlmkitError(f"The router labels {spec.labels} share a first token in this model's vocabulary.",
                              hint="Change router.label_separator or the label words.")

    def suffix(self, request: Request) -> str:
        system, user = request_router_input(request, self.spec.truncation)
        return fill(self.rest, system=system, user=user) + self.spec.answer_prefix

    def label_logits(self, request: Request) -> tuple[list[float], int]:
        logits, evaluated = self.backend.next_token_logits(self.prefix, self.suffix(request))
        return [float(logits[i]) for i in self.label_ids], evaluated

    def decide(self, request: Request) -> RouteDecision:
        """The on-device model's next-token logits for each label word after the router prompt, plus the
        spec's per-label `bias`, softmax at the spec's temperature; `tokens` counts what was evaluated
        (the cached instruction prefix only on its first use).
        """
        start = time.perf_counter()
        raw, evaluated = self.label_logits(request)
        biased = [x + self.spec.bias.get(label, 0.0) for x, label in zip(raw, self.spec.labels)]
        decision = decision_from_logits(self.spec.labels, biased, self.spec.temperature, self.method)
        decision.raw = " ".join(f"{label}={x:.4f}" for label, x in zip(self.spec.labels, raw))
        decision.tokens = evaluated
        decision.latency_ms = (time.perf_counter() - start) * 1000
        return decision
