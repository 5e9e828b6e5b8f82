"""Stand-ins for tier engines and routers: deterministic, so pipeline behaviour can be asserted."""

from __future__ import annotations

from collections.abc import Iterator

from slmkit.runtime.backends.base import Generation
from slmkit.runtime.request import ChatOptions, Request
from slmkit.runtime.router.decision import RouteDecision


class Scripted:
    """A tier engine that answers from a script: text, a whole Generation, or an exception to raise."""

    name = "scripted"

    def __init__(self, *replies: str | Generation | Exception) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []
        self.options: list[ChatOptions | None] = []  # what each generate() was asked beyond text

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        self.calls.append(messages)
        self.options.append(options)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Generation):
            return reply
        return Generation(text=reply, input_tokens=100, output_tokens=50, latency_ms=5.0, model="scripted")

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               options: ChatOptions | None = None) -> Iterator[str | Generation]:
        generation = self.generate(messages, max_tokens, options=options)
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


class ScriptedContinuation:
    """runtime/confidence/options.py's Continuation over scripted next-token probabilities.

    Tokens are whitespace-separated words of `vocab` (ids by position). After the words appended
    so far, `table[tuple(words)]` gives {word: probability}; the rest of the mass spreads evenly
    over the other words of the vocabulary.
    """

    def __init__(self, vocab: list[str], table: dict[tuple[str, ...], dict[str, float]], prompt_tokens: int = 10) -> None:
        self.vocab, self.table, self.prompt_tokens = vocab, table, prompt_tokens
        self.appended: list[str] = []
        self.reads = 0

    def tokenize(self, text: str) -> list[int]:
        return [self.vocab.index(word) for word in text.split()]

    def append(self, tokens) -> None:
        self.appended += [self.vocab[t] for t in tokens]

    def logprobs(self):
        import numpy as np

        self.reads += 1
        named = self.table.get(tuple(self.appended), {})
        rest = (1.0 - sum(named.values())) / max(1, len(self.vocab) - len(named))
        return np.log(np.array([named.get(w, rest) for w in self.vocab]) + 1e-300)


class ScriptedLogits(Scripted):
    """A Scripted engine that also has logits: answers carry `token_logprobs`, and
    `continuation()` opens a ScriptedContinuation (a Continuation whose prompt is ignored)."""

    def __init__(self, *replies: str | Exception, logprobs: list[float] | None = None,
                 vocab: list[str] | None = None, table: dict | None = None) -> None:
        super().__init__(*replies)
        self.logprobs, self.vocab, self.table = logprobs or [-0.1], vocab or [], table or {}
        self.continuations: list[ScriptedContinuation] = []
        self.tier = type("Tier", (), {"model": "scripted"})()

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        generation = super().generate(messages, max_tokens, logprobs, options)
        if logprobs:
            generation.token_logprobs = list(self.logprobs)
            generation.token_margins = [1.0] * len(self.logprobs)
        return generation

    def continuation(self, messages: list[dict[str, str]]):
        from contextlib import nullcontext

        self.calls.append(messages)
        self.continuations.append(ScriptedContinuation(self.vocab, self.table))
        return nullcontext(self.continuations[-1])
