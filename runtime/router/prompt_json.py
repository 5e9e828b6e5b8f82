"""The `prompt_json` router (the seed's): the local model writes {"complexity", "confidence"}."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.runtime.backends.base import BackendError
from slmkit.runtime.prompts import render_router_prompt
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.router.parse import parse_router_output
from slmkit.runtime.spec import RouterSpec

if TYPE_CHECKING:
    from slmkit.runtime.backends.base import Backend
    from slmkit.runtime.router import Router


class PromptJsonRouter:
    method = "prompt_json"

    @classmethod
    def from_spec(cls, spec: RouterSpec, base_dir: Path, backend: Backend | None) -> Router:
        """The registry's constructor (runtime/plugins.py, `slmkit.routers`)."""
        return cls(spec, backend)

    def __init__(self, spec: RouterSpec, backend) -> None:
        self.spec = spec
        self.backend = backend

    def decide(self, request: Request) -> RouteDecision:
        """The seed's router: the tier's model answers the prompt with JSON, parsed leniently
        (runtime/router/parse.py); an engine failure or an unreadable reply gives no label (the policy's
        unparsed_tier), never an exception.
        """
        start = time.perf_counter()
        truncation = self.spec.truncation
        prompt = render_router_prompt(self.spec.prompt, request.system, request.user, truncation,
                                      request.earlier_user_turns(truncation.history_turns))
        try:
            generation = self.backend.generate([{"role": "user", "content": prompt}], self.spec.max_tokens)
        except BackendError as exc:
            return RouteDecision(None, 0.0, raw=f"router failed: {exc.reason}", method=self.method,
                                 latency_ms=(time.perf_counter() - start) * 1000)
        parsed = parse_router_output(generation.text, tuple(self.spec.labels))
        if parsed is None:
            decision = RouteDecision(None, 0.0, method=self.method)
        else:
            confidence = parsed.confidence if parsed.confidence is not None else self.spec.default_confidence
            decision = RouteDecision(parsed.label, confidence, {parsed.label: confidence}, method=self.method)
        decision.raw = generation.text
        decision.tokens = generation.input_tokens + generation.output_tokens
        decision.latency_ms = (time.perf_counter() - start) * 1000
        return decision
