"""Local tiers on llama.cpp (GGUF): chat generation with streaming, and label scoring with the
router's fixed instruction prefix kept in the KV cache."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.chat_template import ChatTemplate
from slmkit.runtime.confidence.logprob import log_softmax, token_stats
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TierSpec

SCORER_CONTEXT = 2048


def gguf_chat_template(llm, name: str) -> ChatTemplate | None:
    """A GGUF's `tokenizer.chat_template` with its BOS/EOS texts, compiled in transformers' environment;
    None when the file has no template. Parity renders the artifact side with this same function."""
    meta = llm.metadata
    template = meta.get("tokenizer.chat_template")
    if not template:
        return None

    def token_text(key: str) -> str | None:
        token_id = meta.get(key)
        return None if token_id is None else llm.detokenize([int(token_id)], special=True).decode("utf-8", "replace")

    return ChatTemplate(template, {"bos_token": token_text("tokenizer.ggml.bos_token_id"),
                                   "eos_token": token_text("tokenizer.ggml.eos_token_id")},
                        origin=f"The chat template in {name}")


def _load(path: Path, n_ctx: int, threads: int | None, embedding: bool = False):
    import llama_cpp

    try:
        if embedding:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                                   n_threads_batch=threads, embedding=True,
                                   pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads,
                               logits_all=False, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise SlmkitError(f"llama.cpp cannot load {path}: {exc}") from None


def _last_logits(llm) -> np.ndarray:
    """Raw logits [vocab] after the last evaluated token (llama_get_logits_ith: no logits_all buffer)."""
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(llm.n_vocab(),)).copy()


class TokenObserver:
    """A logits processor that changes nothing and records, per sampled position, the chosen
    token's log-probability and margin (runtime/confidence/logprob.py `token_stats`).

    llama-cpp-python calls it first in the sampler chain with the raw logits of the whole
    vocabulary in id order. The token chosen at one position is the last input id at the next
    call; the final position's token (end-of-turn, or the last at max_tokens) is the greedy
    argmax, as the tier decodes at temperature 0. `seconds` is the time spent here.
    """

    def __init__(self) -> None:
        self.logprobs: list[float] = []
        self.margins: list[float] = []
        self.seconds = 0.0
        self._pending: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if self._pending is not None:
            self._record(int(input_ids[-1]))
        self._pending = np.array(logits, dtype=np.float32)
        self.seconds += time.perf_counter() - start
        return logits

    def _record(self, token: int) -> None:
        assert self._pending is not None
        logprob, margin = token_stats(self._pending, token)
        self.logprobs.append(logprob)
        self.margins.append(margin)
        self._pending = None

    def finish(self) -> None:
        start = time.perf_counter()
        if self._pending is not None:
            self._record(int(self._pending.argmax()))
        self.seconds += time.perf_counter() - start


class _Continuation:
    """runtime/confidence/options.py's Continuation over one llama.cpp context."""

    def __init__(self, llm, ids: list[int]) -> None:
        """Evaluates `ids`, reusing the KV cache of the longest prefix the context already holds
        (as llama-cpp-python's own generate does); `reused` tokens were not evaluated again."""
        self.llm = llm
        held = list(llm.input_ids[: llm.n_tokens])
        shared = 0
        while shared < min(len(held), len(ids) - 1) and held[shared] == ids[shared]:
            shared += 1
        llm.n_tokens = shared  # eval() drops the cache cells past this point
        llm.eval(ids[shared:])
        self.reused = shared
        self.prompt_tokens = len(ids)

    def logprobs(self) -> np.ndarray:
        return log_softmax(_last_logits(self.llm))

    def append(self, tokens: Sequence[int]) -> None:
        self.llm.eval(list(tokens))

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


class LlamaCppBackend:
    """One GGUF. Generation and scoring use separate contexts, so a chat answer never evicts
    the router's cached prefix."""

    name = "llama.cpp"

    def __init__(self, tier: TierSpec, model_path: Path) -> None:
        self.tier = tier
        self.path = model_path
        self._generator = None
        self._scorer = None
        self._embedder = None
        self._prefix: list[int] = []
        self._template: ChatTemplate | None = None
        self._lock = threading.Lock()

    # -- generation -------------------------------------------------------------------------
    @property
    def generator(self):
        if self._generator is None:
            self._generator = _load(self.path, self.tier.context_tokens, self.tier.threads)
        return self._generator

    def _chat_tokens(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """The GGUF's own chat template rendered as transformers renders it (runtime/chat_template.py,
        a system prompt folded when the template has no system role), tokenized without adding BOS
        again, as `apply_chat_template(tokenize=True)` does."""
        llm = self.generator
        if self._template is None:
            self._template = gguf_chat_template(llm, self.path.name)
            if self._template is None:
                raise BackendError(f"{self.path.name} has no chat template")
        try:
            prompt = self._template.render_chat(messages)
        except SlmkitError as exc:
            raise BackendError(str(exc)) from None
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        eos = self._template.special_tokens.get("eos_token")
        return ids, [eos] if eos else []

    def stream(self, messages: list[dict[str, str]], max_tokens: int,
               logprobs: bool = False) -> Iterator[str | Generation]:
        """With `logprobs`, the Generation carries each token's log-probability and margin."""
        observer = TokenObserver() if logprobs else None
        with self._lock:
            start = time.perf_counter()
            ids, stops = self._chat_tokens(messages)
            room = self.tier.context_tokens - len(ids)
            if room < 1:
                raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
            pieces: list[str] = []
            ttft = None
            finish = "length"
            try:
                for chunk in self.generator.create_completion(ids, max_tokens=min(max_tokens, room), temperature=0.0,
                                                              stop=stops, stream=True,
                                                              logits_processor=[observer] if observer else None):
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
                        pieces.append(choice["text"])
                        yield choice["text"]
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                    if time.perf_counter() - start > self.tier.timeout_s:
                        raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from None
            text = "".join(pieces)
            output = len(self.generator.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0
            if observer:
                observer.finish()
            yield Generation(text=text, input_tokens=len(ids), output_tokens=output,
                             latency_ms=(time.perf_counter() - start) * 1000, model=self.path.name,
                             finish_reason=finish, ttft_ms=ttft,
                             token_logprobs=observer.logprobs if observer else None,
                             token_margins=observer.margins if observer else None)

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False) -> Generation:
        *_, last = self.stream(messages, max_tokens, logprobs)
        return last

    @contextmanager
    def continuation(self, messages: list[dict[str, str]]) -> Iterator[_Continuation]:
        """The chat prompt of `messages` (generation prompt added) evaluated in the generation
        context, to be extended and scored token by token; the context is held until exit."""
        with self._lock:
            ids, _ = self._chat_tokens(messages)
            if len(ids) >= self.tier.context_tokens:
                raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
            try:
                yield _Continuation(self.generator, ids)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from None

    def speed_test(self, prompt_tokens: int = 256, decode_tokens: int = 64) -> tuple[float, float]:
        """(prefill, decode) tokens/s on this machine, llama-bench style: a fixed-length prompt in
        one batch, then one token at a time (fixed token ids: speed does not depend on which token)."""
        with self._lock:
            llm = self.generator
            vocab = llm.n_vocab()
            ids = [(7 + 31 * i) % vocab for i in range(min(prompt_tokens, self.tier.context_tokens - decode_tokens - 1))]
            llm.reset()
            start = time.perf_counter()
            llm.eval(ids)
            prefill_s = time.perf_counter() - start
            token = ids[-1]
            start = time.perf_counter()
            for _ in range(decode_tokens):
                llm.eval([token])
                token = (token * 17 + 3) % vocab
            decode_s = time.perf_counter() - start
            llm.reset()
            return len(ids) / prefill_s, decode_tokens / decode_s

    # -- scoring ----------------------------------------------------------------------------
    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = _load(self.path, min(SCORER_CONTEXT, self.tier.context_tokens), self.tier.threads)
        return self._scorer

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        return self.scorer.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def next_token_logits(self, prefix: str, suffix: str) -> tuple[np.ndarray, int]:
        """Logits after prefix + suffix, and the number of tokens evaluated.

        The prefix (the router's fixed instruction) is tokenized on its own and stays in the KV
        cache between calls; only the suffix (the request) is evaluated. Logits are read with
        llama_get_logits_ith, so the context needs no per-position logits buffer.
        """
        with self._lock:
            llm = self.scorer
            prefix_ids = self.tokenize(prefix, add_bos=True)
            suffix_ids = self.tokenize(suffix, add_bos=False)
            budget = llm.n_ctx() - len(prefix_ids)
            if budget < 1:
                raise BackendError(f"router prefix of {len(prefix_ids)} tokens does not fit the scoring context")
            suffix_ids = suffix_ids[-budget:] if len(suffix_ids) > budget else suffix_ids
            if prefix_ids != self._prefix or llm.n_tokens < len(prefix_ids):
                llm.reset()
                llm.eval(prefix_ids)
                self._prefix = prefix_ids
                evaluated = len(prefix_ids)
            else:
                evaluated = 0
            llm.n_tokens = len(prefix_ids)  # eval() drops the cache cells past this point
            llm.eval(suffix_ids)
            return _last_logits(llm), evaluated + len(suffix_ids)

    # -- hidden state (the probe router) ----------------------------------------------------
    def embedding(self, text: str) -> np.ndarray:
        """The model's last hidden state, mean-pooled over the text's tokens (BOS included)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = _load(self.path, min(SCORER_CONTEXT, self.tier.context_tokens), self.tier.threads,
                                       embedding=True)
            try:
                return np.asarray(self._embedder.embed(text, normalize=False, truncate=True), dtype=np.float64)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp embedding failed: {exc}") from None

    def close(self) -> None:
        for llm in (self._generator, self._scorer, self._embedder):
            if llm is not None:
                llm.close()
        self._generator = self._scorer = self._embedder = None
