"""Router methods behind one interface: `decide(request) -> RouteDecision`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import RoutingSpec

__all__ = ["RouteDecision", "Router", "make_router"]


class Router(Protocol):
    method: str

    def decide(self, request: Request) -> RouteDecision: ...


def make_router(spec: RoutingSpec, base_dir: Path, backends: dict) -> Router:
    """The spec's router (reading conversations when `truncation.history_turns` > 0); model-based
    methods share the backend of the tier they name."""
    router = _method_router(spec, base_dir, backends)
    if spec.router.truncation.history_turns > 0:
        from slmkit.runtime.router.conversation import ConversationRouter

        return ConversationRouter(router, spec)
    return router


def _method_router(spec: RoutingSpec, base_dir: Path, backends: dict) -> Router:
    method = spec.router.method
    if method == "classifier":
        from slmkit.runtime.router.classifier import ClassifierRouter

        return ClassifierRouter(spec.router, base_dir)
    backend = backends[spec.router.tier]
    if method == "probe":
        from slmkit.runtime.router.probe import ProbeRouter

        return ProbeRouter(spec.router, base_dir, backend)
    if method == "label_logits":
        from slmkit.runtime.router.label_logits import LabelLogitsRouter

        return LabelLogitsRouter(spec.router, backend)
    from slmkit.runtime.router.prompt_json import PromptJsonRouter

    return PromptJsonRouter(spec.router, backend)
