"""Stand-ins for tier engines and routers: deterministic, so pipeline behaviour can be asserted."""

from __future__ import annotations

from collections.abc import Iterator

from slmkit.runtime.backends.base import Generation
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision


class Scripted:
    """A tier engine that answers from a script: text, or an exception to raise."""

    name = "scripted"

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def generate(self, messages: list[dict[str, str]], max_tokens: int) -> Generation:
        self.calls.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return Generation(text=reply, input_tokens=100, output_tokens=50, latency_ms=5.0, model="scripted")

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
        generation = self.generate(messages, max_tokens)
        for word in generation.text.split(" "):
            yield word + " "
        yield generation

    def close(self) -> None:
        pass


class FixedRouter:
    method = "fixed"

    def __init__(self, label: str | None, confidence: float) -> None:
        self.label, self.confidence = label, confidence

    def decide(self, request: Request) -> RouteDecision:
        return RouteDecision(self.label, self.confidence, method=self.method)
