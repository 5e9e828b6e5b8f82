"""Router methods behind one interface: `decide(request) -> RouteDecision`, each registered by its
routing.json `method` name in the `slmkit.routers` entry points (runtime/plugins.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from slmkit.runtime.plugins import load_plugin
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import RouterSpec, RoutingSpec

if TYPE_CHECKING:
    from slmkit.runtime.backends.base import Backend

__all__ = ["RouteDecision", "Router", "make_router"]

GROUP = "slmkit.routers"


class Router(Protocol):
    method: str

    @classmethod
    def from_spec(cls, spec: RouterSpec, base_dir: Path, backend: Backend | None) -> Router:
        """The router `spec` describes; weights resolve relative to `base_dir` (routing.json's folder),
        and model-based methods run on `backend`, the engine of the tier they name (None for a
        method that needs none). Raises SlmkitError when its files are missing or malformed."""
        ...

    def decide(self, request: Request) -> RouteDecision: ...


def make_router(spec: RoutingSpec, base_dir: Path, backends: dict[str, Backend]) -> Router:
    """The spec's router (reading conversations when `truncation.history_turns` > 0); model-based
    methods share the backend of the tier they name, which `backends` must hold."""
    backend = backends[spec.router.tier] if spec.router.tier else None
    router = load_plugin(GROUP, spec.router.method, "router method").from_spec(spec.router, base_dir, backend)
    if spec.router.truncation.history_turns > 0:
        from slmkit.runtime.router.conversation import ConversationRouter

        return ConversationRouter(router, spec)
    return router
