"""The one interface every tier's engine implements, local or cloud."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.request import ChatOptions, Request
from slmkit.runtime.spec import TierSpec


class BackendError(Exception):
    """A tier could not answer (timeout, HTTP error, malformed reply, missing key, engine error).

    The pipeline catches it and falls through to the next tier; `reason` goes into the trace,
    so it must never contain secrets.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Engines' and providers' stop reasons -> OpenAI's finish_reason (Anthropic's Messages API names).
FINISH_REASONS = {"stop": "stop", "length": "length", "end_turn": "stop", "stop_sequence": "stop",
                  "max_tokens": "length", "eos": "stop", "content_filter": "content_filter",
                  "tool_calls": "tool_calls", "tool_use": "tool_calls"}


def openai_finish_reason(reason: str | None) -> str:
    """"stop" (the model ended its answer or hit a stop sequence), "length" (max_tokens) or
    "tool_calls" (the answer is a set of tool calls)."""
    return FINISH_REASONS.get(str(reason or "stop"), "stop")


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    model: str
    finish_reason: str = "stop"
    ttft_ms: float | None = None
    simulated: bool = False
    tokens_estimated: bool = False  # counts from characters, not a tokenizer or the provider
    # Per generated token (end-of-turn included), from engines that expose logits; None elsewhere.
    token_logprobs: list[float] | None = None  # natural-log probability of the chosen token
    token_margins: list[float] | None = None  # its log-probability minus the best other token's (>= 0 when greedy)
    # OpenAI's shapes, for the client: choices[].message.tool_calls and choices[].logprobs.content.
    tool_calls: list[dict] | None = None
    logprobs: list[dict] | None = None


class Backend(Protocol):
    """A tier's engine, registered by its routing.json name in the `slmkit.backends` entry points
    (runtime/plugins.py) and built with `from_tier`."""

    name: str

    @classmethod
    def from_tier(cls, tier: TierSpec, base_dir: Path) -> Backend:
        """The engine for `tier`; model files resolve relative to `base_dir` (routing.json's folder).
        Raises SlmkitError when the tier cannot run here (missing model, Core ML off macOS)."""
        ...

    def generate(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """The answer; with `logprobs`, engines that expose logits fill its token_logprobs/margins
        (the others leave them None). `options` carries what the client asked of the answer; the
        pipeline passes only what the tier can honour (TierSpec.can)."""
        ...

    def stream(self, messages: list[dict], max_tokens: int,
               options: ChatOptions | None = None) -> Generator[str | Generation, None, None]:
        """Text pieces as they are produced, then the finished Generation (a generator: closing it
        stops the engine and releases it)."""
        ...

    def close(self) -> None: ...


class RemoteBackend:
    """`from_tier` for engines constructed from the tier alone (cloud tiers, the simulator)."""

    @classmethod
    def from_tier(cls, tier: TierSpec, base_dir: Path) -> RemoteBackend:
        return cls(tier)  # type: ignore[call-arg]


class LocalBackend:
    """`from_tier` for engines over a model file or folder: the tier's `model` resolved against
    `base_dir` or the embedded models (runtime/models/embedded.py), passed to `cls(tier, path)`."""

    @classmethod
    def from_tier(cls, tier: TierSpec, base_dir: Path) -> LocalBackend:
        return cls(tier, resolve_model_file(tier.model, base_dir))  # type: ignore[call-arg]


def estimate_tokens(text: str) -> int:
    """About 4 characters per token: used only where no tokenizer or provider count exists."""
    return max(1, (len(text) + 3) // 4)


def estimate_request_tokens(request: Request) -> int:
    """A request's input tokens as priced without running a tier: `estimate_tokens` of every
    message's text (system, history, user turn, tool exchange)."""
    return sum(estimate_tokens(m["content"] if isinstance(m.get("content"), str) else "") for m in request.messages())


def stream_whole(backend: Backend, messages: list[dict], max_tokens: int,
                 options: ChatOptions | None = None) -> Iterator[str | Generation]:
    """Streaming for engines that answer in one piece (cloud tiers here, the simulator)."""
    generation = backend.generate(messages, max_tokens, options=options)
    if generation.text:
        yield generation.text
    yield generation
