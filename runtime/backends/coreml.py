"""Core ML tiers (macOS; the same stateful program an iOS app runs). Prediction exists only on
Apple platforms, so elsewhere the tier refuses to load with a clear message."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation, LocalBackend
from slmkit.runtime.chat_template import load_chat_template
from slmkit.runtime.confidence.logprob import log_softmax, token_stats
from slmkit.runtime.engines import coreml
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import TierSpec


def require_macos(tier_name: str) -> None:
    """Raises SlmkitError off macOS: Core ML prediction exists only on Apple platforms (coremltools
    installs on Linux but cannot run a model there).
    """
    if sys.platform != "darwin":
        raise SlmkitError(f"Tier {tier_name} uses the coreml backend, which runs on macOS (and iOS) only.",
                          hint="On Linux, give this tier a llama.cpp (GGUF) or onnxruntime-genai model for simulation.")


class CoreMLBackend(LocalBackend):
    """Greedy generation through the artifact's KV-cache states: one prefill call, then one token per call."""

    name = "coreml"

    def __init__(self, tier: TierSpec, folder: Path) -> None:
        require_macos(tier.name)
        from tokenizers import Tokenizer

        packages = sorted(folder.glob("*.mlpackage"))
        if not packages:
            raise SlmkitError(f"Tier {tier.name}: no .mlpackage in {folder}.", hint="Convert with `slmkit convert MODEL --target coreml`.")
        self.tier = tier
        self.model = coreml.open_mlmodel(packages[0], "CPU_AND_NE")
        metadata = self.model.user_defined_metadata
        tokenizer_dir = folder / metadata.get("slmkit.tokenizer_dir", "tokenizer")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        self.cache_length = int(metadata.get("slmkit.cache_length", tier.context_tokens))
        template = load_chat_template(tokenizer_dir)
        if template is None:
            raise SlmkitError(f"Tier {tier.name}: {tokenizer_dir} has no chat template.")
        self.template = template
        self.eos = template.special_tokens.get("eos_token")
        eos_id = self.tokenizer.token_to_id(self.eos) if self.eos else None
        self.stop_ids = {eos_id} if eos_id is not None else set()
        self.model_name = packages[0].name

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            prompt = self.template.render_chat(messages)
        except SlmkitError as exc:
            raise BackendError(str(exc)) from None
        return self.tokenizer.encode(prompt, add_special_tokens=False).ids

    def _next_logits(self, state, prompt: Sequence[int], generated: Sequence[int]) -> np.ndarray:
        """Logits [vocab] for the next token: the prompt prefilled in chunks at the first call
        (`generated` empty), then the last generated token (runtime/engines/coreml.py, as parity runs it)."""
        if not generated:
            return coreml.prefill_last(self.model, state, prompt)
        return coreml.step(self.model, state, generated[-1:], len(prompt) + len(generated))[-1]

    def stream(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
               options: ChatOptions | None = None) -> Iterator[str | Generation]:
        """With `logprobs`, each token's log-probability and margin from the logits it was chosen from."""
        start = time.perf_counter()
        ids = self._prompt_ids(messages)
        room = min(self.cache_length, self.tier.context_tokens) - len(ids)
        if room < 1:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.cache_length}-token cache")
        state = self.model.make_state()
        generated: list[int] = []
        stats: list[tuple[float, float]] = []
        shown = ""
        ttft = None
        for _ in range(min(max_tokens, room)):
            logits = self._next_logits(state, ids, generated)
            token = int(logits.argmax())
            if logprobs:
                stats.append(token_stats(logits, token))
            if token in self.stop_ids:
                break
            generated.append(token)
            text = self.tokenizer.decode(generated)
            ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown):]
                shown = text
            if time.perf_counter() - start > self.tier.timeout_s:
                raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
        yield Generation(text=shown, input_tokens=len(ids), output_tokens=len(generated),
                         latency_ms=(time.perf_counter() - start) * 1000, model=self.model_name,
                         finish_reason="length" if len(generated) >= min(max_tokens, room) else "stop", ttft_ms=ttft,
                         token_logprobs=[lp for lp, _ in stats] if logprobs else None,
                         token_margins=[m for _, m in stats] if logprobs else None)

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """`options` are not honoured here (free text only: TIER_FEATURES); the pipeline sends none that matter."""
        *_, last = self.stream(messages, max_tokens, logprobs)
        return last

    @contextmanager
    def continuation(self, messages: list[dict[str, str]]) -> Iterator[_CoremlContinuation]:
        """The chat prompt of `messages` prefilled into fresh states, extended and scored token by token."""
        ids = self._prompt_ids(messages)
        if len(ids) >= min(self.cache_length, self.tier.context_tokens):
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.cache_length}-token cache")
        try:
            yield _CoremlContinuation(self, ids)
        except RuntimeError as exc:
            raise BackendError(f"Core ML failed: {exc}") from None

    def close(self) -> None:
        self.model = None


class _CoremlContinuation:
    """runtime/confidence/options.py's Continuation over the package's KV-cache states."""

    def __init__(self, backend: CoreMLBackend, ids: list[int]) -> None:
        self.backend, self.prompt_tokens = backend, len(ids)
        self.state = backend.model.make_state()
        self.total = len(ids)
        self.last = coreml.prefill_last(backend.model, self.state, ids)

    def logprobs(self) -> np.ndarray:
        return log_softmax(self.last)

    def append(self, tokens: Sequence[int]) -> None:
        self.total += len(tokens)
        self.last = coreml.step(self.backend.model, self.state, tokens, self.total)[-1]

    def tokenize(self, text: str) -> list[int]:
        return self.backend.tokenizer.encode(text, add_special_tokens=False).ids
