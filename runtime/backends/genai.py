"""Local tiers on onnxruntime-genai (the ONNX artifact folder an Android/iOS app loads)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation, LocalBackend
from slmkit.runtime.confidence.logprob import log_softmax, token_stats
from slmkit.runtime.engines.genai import GenaiEngine
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import TierSpec


class GenaiBackend(LocalBackend):
    name = "onnxruntime-genai"

    def __init__(self, tier: TierSpec, folder: Path) -> None:
        """Opens the folder with runtime/engines/genai.py (parity's GenaiRunner opens it the same way).
        Raises SlmkitError naming the tier when the folder cannot be loaded."""
        try:
            self.engine = GenaiEngine(folder, tier.threads)
        except SlmkitError as exc:
            raise SlmkitError(f"Tier {tier.name}: {exc.args[0]}", hint=exc.hint) from None
        self.tier = tier
        self.folder = folder

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            return self.engine.prompt_ids(messages)
        except SlmkitError as exc:
            raise BackendError(str(exc)) from None

    def stream(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
               options: ChatOptions | None = None) -> Iterator[str | Generation]:
        """With `logprobs`, each token's log-probability and margin come from the logits it was
        chosen from (`Generator.get_logits` before `generate_next_token`)."""
        start = time.perf_counter()
        ids = self._prompt_ids(messages)
        room = self.tier.context_tokens - len(ids)
        if room < 1:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
        generator = self.engine.generator(len(ids) + min(max_tokens, room))
        stream = self.engine.tokenizer.create_stream()
        pieces: list[str] = []
        stats: list[tuple[float, float]] = []
        ttft = None
        try:
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
            while not generator.is_done():
                logits = np.asarray(generator.get_logits()).reshape(-1) if logprobs else None
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                if logits is not None:
                    stats.append(token_stats(logits, token))
                piece = stream.decode(token)
                ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
                if piece:
                    pieces.append(piece)
                    yield piece
                if time.perf_counter() - start > self.tier.timeout_s:
                    raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
        except RuntimeError as exc:
            raise BackendError(f"onnxruntime-genai failed: {exc}") from None
        output = len(generator.get_sequence(0)) - len(ids)
        yield Generation(text="".join(pieces), input_tokens=len(ids), output_tokens=output,
                         latency_ms=(time.perf_counter() - start) * 1000, model=self.folder.name,
                         finish_reason="length" if output >= min(max_tokens, room) else "stop", ttft_ms=ttft,
                         token_logprobs=[lp for lp, _ in stats] if logprobs else None,
                         token_margins=[m for _, m in stats] if logprobs else None)

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """`options` are not honoured here (free text only: TIER_FEATURES); the pipeline sends none that matter."""
        *_, last = self.stream(messages, max_tokens, logprobs)
        return last

    @contextmanager
    def continuation(self, messages: list[dict[str, str]]) -> Iterator[_GenaiContinuation]:
        """The chat prompt of `messages` in a fresh generator, extended and scored token by token."""
        ids = self._prompt_ids(messages)
        if len(ids) >= self.tier.context_tokens:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
        try:
            generator = self.engine.generator(self.tier.context_tokens)
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
            yield _GenaiContinuation(self, generator, len(ids))
        except RuntimeError as exc:
            raise BackendError(f"onnxruntime-genai failed: {exc}") from None

    def close(self) -> None:
        self.engine.close()


class _GenaiContinuation:
    """runtime/confidence/options.py's Continuation over an onnxruntime-genai Generator."""

    def __init__(self, backend: GenaiBackend, generator, prompt_tokens: int) -> None:
        self.backend, self.generator, self.prompt_tokens = backend, generator, prompt_tokens

    def logprobs(self) -> np.ndarray:
        return log_softmax(np.asarray(self.generator.get_logits()).reshape(-1))

    def append(self, tokens: Sequence[int]) -> None:
        self.generator.append_tokens(np.asarray([list(tokens)], dtype=np.int32))

    def tokenize(self, text: str) -> list[int]:
        return self.backend.engine.encode(text, special=False)
