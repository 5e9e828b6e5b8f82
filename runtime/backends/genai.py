"""Local tiers on onnxruntime-genai (the ONNX artifact folder an Android/iOS app loads)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.chat_template import fold_system, load_chat_template
from slmkit.runtime.confidence.logprob import log_softmax, token_stats
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import TierSpec


def refuses_system(folder: Path) -> bool:
    """Whether the model folder's chat template refuses a system role (runtime/chat_template.py)."""
    template = load_chat_template(folder)
    return template is not None and template.refuses_system()


def render_chat(tokenizer, messages: list[dict[str, str]], fold: bool) -> str:
    """The chat prompt as genai's own template engine renders it (an app's call), with a system
    prompt folded into the first user turn first when the template refuses the role (`fold`).
    Parity renders the artifact side with this same function."""
    if fold:
        messages = fold_system(messages)
    try:
        return tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
    except RuntimeError as exc:  # genai reports template errors as RuntimeError
        raise SlmkitError(f"onnxruntime-genai's chat template failed: {str(exc).splitlines()[0]}") from None


class GenaiBackend:
    name = "onnxruntime-genai"

    def __init__(self, tier: TierSpec, folder: Path) -> None:
        import onnxruntime_genai as og

        if not (folder / "genai_config.json").is_file():
            raise SlmkitError(f"Tier {tier.name}: {folder} is not an onnxruntime-genai folder (no genai_config.json).",
                              hint="Convert with `slmkit convert MODEL --target onnx`.")
        self._og = og
        self.tier = tier
        self.folder = folder
        config = og.Config(str(folder))
        if tier.threads:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": tier.threads, "inter_op_num_threads": 1}}}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # genai raises RuntimeError with ORT's message
            raise SlmkitError(f"onnxruntime-genai cannot load {folder}: {exc}") from None
        self.tokenizer = og.Tokenizer(self.model)
        self.tokenizer.update_options(add_special_tokens="true")
        self.fold_system = refuses_system(folder)

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        try:
            prompt = render_chat(self.tokenizer, messages, self.fold_system)
        except SlmkitError as exc:
            raise BackendError(str(exc)) from None
        return self.encode_plain(prompt)  # the template writes any BOS, as apply_chat_template(tokenize=True)

    def stream(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False,
               options: ChatOptions | None = None) -> Iterator[str | Generation]:
        """With `logprobs`, each token's log-probability and margin come from the logits it was
        chosen from (`Generator.get_logits` before `generate_next_token`)."""
        og = self._og
        start = time.perf_counter()
        ids = self._prompt_ids(messages)
        room = self.tier.context_tokens - len(ids)
        if room < 1:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + min(max_tokens, room), do_sample=False)
        generator = og.Generator(self.model, params)
        stream = self.tokenizer.create_stream()
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
        params = self._og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.tier.context_tokens, do_sample=False)
        try:
            generator = self._og.Generator(self.model, params)
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
            yield _GenaiContinuation(self, generator, len(ids))
        except RuntimeError as exc:
            raise BackendError(f"onnxruntime-genai failed: {exc}") from None

    def encode_plain(self, text: str) -> list[int]:
        """Token ids of `text` without the BOS the chat prompt's encoding adds."""
        self.tokenizer.update_options(add_special_tokens="false")
        try:
            return [int(t) for t in self.tokenizer.encode(text)]
        finally:
            self.tokenizer.update_options(add_special_tokens="true")

    def close(self) -> None:
        self.model = None


class _GenaiContinuation:
    """runtime/confidence/options.py's Continuation over an onnxruntime-genai Generator."""

    def __init__(self, backend: GenaiBackend, generator, prompt_tokens: int) -> None:
        self.backend, self.generator, self.prompt_tokens = backend, generator, prompt_tokens

    def logprobs(self) -> np.ndarray:
        return log_softmax(np.asarray(self.generator.get_logits()).reshape(-1))

    def append(self, tokens: Sequence[int]) -> None:
        self.generator.append_tokens(np.asarray([list(tokens)], dtype=np.int32))

    def tokenize(self, text: str) -> list[int]:
        return self.backend.encode_plain(text)
