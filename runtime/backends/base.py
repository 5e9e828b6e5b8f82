"""The one interface every tier's engine implements, local or cloud."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


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
                  "max_tokens": "length", "eos": "stop", "content_filter": "content_filter"}


def openai_finish_reason(reason: str | None) -> str:
    """"stop" (the model ended its answer or hit a stop sequence) or "length" (max_tokens)."""
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


class Backend(Protocol):
    name: str

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False) -> Generation:
        """The answer; with `logprobs`, engines that expose logits fill its token_logprobs/margins
        (the others leave them None)."""
        ...

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
        """Text pieces as they are produced, then the finished Generation."""
        ...

    def close(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """About 4 characters per token: used only where no tokenizer or provider count exists."""
    return max(1, (len(text) + 3) // 4)


def stream_whole(backend: Backend, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
    """Streaming for engines that answer in one piece (cloud tiers here, the simulator)."""
    generation = backend.generate(messages, max_tokens)
    yield generation.text
    yield generation
