"""Local tiers on llama.cpp (GGUF): chat generation with streaming, and label scoring with the
router's fixed instruction prefix kept in the KV cache."""

from __future__ import annotations

import codecs
import json
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation, LocalBackend
from slmkit.runtime.chat_template import ChatTemplate
from slmkit.runtime.confidence.logprob import log_softmax, token_stats
from slmkit.runtime.engines.llamacpp import gguf_chat_template, last_logits, open_llama, prompt_ids
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import TierSpec
from slmkit.runtime.stops import StopScanner

SCORER_CONTEXT = 2048
GRAMMAR_CACHE = 32  # compiled grammars kept per tier (a schema compiles in milliseconds to seconds)


@dataclass(frozen=True)
class SpeedSample:
    """One speed test of a llama.cpp tier on this host (LlamaCppBackend.speed_test)."""

    prefill_tps: float   # tokens/s of one prompt batch
    decode_tps: float    # tokens/s of the best window of single-token steps
    cpu_share: float     # CPU time the engine's threads got while decoding / (wall time x threads): ~1 when quiet


class LogitsTap:
    """A logits processor that changes nothing and keeps the raw logits [vocab] of the position
    being sampled; the decode loop then records the token chosen from them (`take`).

    llama-cpp-python calls it first in the sampler chain (before repetition penalties, a grammar
    and the greedy pick) with the raw logits of the whole vocabulary in id order. Per taken token
    it keeps the log-probability and margin (runtime/confidence/logprob.py `token_stats`) and,
    with `top` > 0, the `top` most likely token ids with their log-probabilities. `seconds` is
    the time spent here.
    """

    def __init__(self, top: int = 0) -> None:
        self.top = top
        self.tokens: list[int] = []
        self.logprobs: list[float] = []
        self.margins: list[float] = []
        self.alternatives: list[list[tuple[int, float]]] = []
        self.seconds = 0.0
        self._pending: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        self._pending = np.array(logits, dtype=np.float32)
        return logits

    def take(self, token: int) -> None:
        """Record `token` as chosen from the logits seen last."""
        if self._pending is None:
            return
        start = time.perf_counter()
        logprob, margin = token_stats(self._pending, token)
        self.tokens.append(token)
        self.logprobs.append(logprob)
        self.margins.append(margin)
        if self.top:
            values = log_softmax(self._pending)
            best = np.argpartition(-values, self.top - 1)[: self.top]
            best = best[np.argsort(-values[best], kind="stable")]
            self.alternatives.append([(int(i), float(values[i])) for i in best])
        self._pending = None
        self.seconds += time.perf_counter() - start


def _remote_ref(node: object) -> str | None:
    """The first `$ref` in a JSON schema that does not point inside it (#...), else None."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return ref
        return next((r for v in node.values() if (r := _remote_ref(v))), None)
    if isinstance(node, list):
        return next((r for v in node if (r := _remote_ref(v))), None)
    return None


def _grammar(schema: dict):
    """llama.cpp's grammar for a JSON schema ({} = any JSON object), built by llama.cpp's own
    json-schema-to-grammar converter as shipped in llama-cpp-python (LlamaGrammar)."""
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import JSON_GBNF

    if remote := _remote_ref(schema):  # the converter would fetch it over HTTP: never from a request
        raise BackendError(f"response_format: only local $refs (#/...) are allowed in a schema, not {remote[:80]!r}")
    try:
        if not schema:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except (ValueError, RuntimeError, KeyError, TypeError, NotImplementedError, AssertionError, RecursionError) as exc:
        raise BackendError(f"response_format: llama.cpp cannot build a grammar from this schema ({exc})") from None


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
        return log_softmax(last_logits(self.llm))

    def append(self, tokens: Sequence[int]) -> None:
        self.llm.eval(list(tokens))

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


class LlamaCppBackend(LocalBackend):
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
        self._grammars: dict[str, object] = {}  # compiled LlamaGrammar per schema, newest last
        self._lock = threading.Lock()

    # -- generation -------------------------------------------------------------------------
    @property
    def generator(self):
        if self._generator is None:
            self._generator = open_llama(self.path, self.tier.context_tokens, self.tier.threads)
        return self._generator

    def _chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
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
        return prompt_ids(llm, prompt)

    def _grammar_for(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            if len(self._grammars) >= GRAMMAR_CACHE:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = _grammar(schema)
        return self._grammars[key]

    def stream(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
               options: ChatOptions | None = None) -> Generator[str | Generation, None, None]:
        """Greedy decoding of the chat answer, piece by piece, then the Generation.

        With `logprobs`, the Generation carries each token's log-probability and margin (end of turn
        included); with `options.top_logprobs`, OpenAI-shaped `logprobs` entries for the answer's
        tokens. `options.response_format` constrains decoding with a grammar; `options.stop` ends it
        at the first stop sequence. Raises BackendError (prompt past the context, engine failure,
        timeout, a schema llama.cpp cannot turn into a grammar).
        """
        import llama_cpp

        options = options or ChatOptions()
        schema = options.json_schema()
        with self._lock:
            start = time.perf_counter()
            ids = self._chat_tokens(messages)
            room = self.tier.context_tokens - len(ids)
            if room < 1:
                raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
            llm = self.generator
            if not self.tier.prompt_cache:
                llm.reset()  # the whole prompt in one prefill, as a fresh process does (TierSpec.prompt_cache)
            grammar = self._grammar_for(schema) if schema is not None else None
            tap = LogitsTap(options.top_logprobs or 0) if logprobs or options.top_logprobs is not None else None
            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            scanner = StopScanner(options.stop)
            tokens: list[int] = []
            pieces: list[str] = []
            ttft = None
            finish = "length"
            try:
                for token in llm.generate(ids, temp=0.0, logits_processor=[tap] if tap else None, grammar=grammar):
                    if tap:
                        tap.take(token)
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        finish = "stop"
                        break
                    tokens.append(token)
                    if text := scanner.feed(decoder.decode(llm.detokenize([token]))):
                        ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
                        pieces.append(text)
                        yield text
                    if scanner.stopped:
                        finish = "stop"
                        break
                    if len(tokens) >= min(max_tokens, room):
                        break
                    if time.perf_counter() - start > self.tier.timeout_s:
                        raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from None
            if rest := scanner.feed(decoder.decode(b"", final=True)) + scanner.flush():
                pieces.append(rest)
                yield rest
            text = "".join(pieces)
            yield Generation(text=text, input_tokens=len(ids), output_tokens=len(tokens),
                             latency_ms=(time.perf_counter() - start) * 1000, model=self.path.name,
                             finish_reason=finish, ttft_ms=ttft,
                             token_logprobs=tap.logprobs if logprobs and tap else None,
                             token_margins=tap.margins if logprobs and tap else None,
                             logprobs=self._openai_logprobs(tap, len(tokens)) if options.top_logprobs is not None else None)

    def _openai_logprobs(self, tap: LogitsTap | None, count: int) -> list[dict]:
        """OpenAI's choices[].logprobs.content for the first `count` taken tokens (the answer's,
        without the end of turn): token text, natural-log probability, UTF-8 bytes, alternatives."""
        assert tap is not None

        def entry(token: int, logprob: float) -> dict:
            raw = self.generator.detokenize([token])
            return {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}

        return [{**entry(token, logprob), "top_logprobs": [entry(i, lp) for i, lp in (tap.alternatives[k] if tap.top else [])]}
                for k, (token, logprob) in enumerate(zip(tap.tokens[:count], tap.logprobs[:count]))]

    def generate(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        *_, last = self.stream(messages, max_tokens, logprobs, options)
        return last

    @contextmanager
    def continuation(self, messages: list[dict[str, str]]) -> Iterator[_Continuation]:
        """The chat prompt of `messages` (generation prompt added) evaluated in the generation
        context, to be extended and scored token by token; the context is held until exit."""
        with self._lock:
            ids = self._chat_tokens(messages)
            if len(ids) >= self.tier.context_tokens:
                raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
            try:
                yield _Continuation(self.generator, ids)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from None

    def speed_test(self, prompt_tokens: int = 256, decode_tokens: int = 64, window: int = 8) -> SpeedSample:
        """Prefill and decode speed on this machine, llama-bench style: a fixed-length prompt in one
        batch, then one token at a time (fixed token ids: speed does not depend on which token).

        Decode speed is the best of its windows of `window` consecutive steps, so a moment when
        another process held a core is not taken for the model's speed; `cpu_share` says how much
        CPU the engine's threads got over all decode steps (process CPU time / (wall time x threads)).
        """
        with self._lock:
            llm = self.generator
            vocab = llm.n_vocab()
            ids = [(7 + 31 * i) % vocab for i in range(min(prompt_tokens, self.tier.context_tokens - decode_tokens - 1))]
            llm.reset()
            start = time.perf_counter()
            llm.eval(ids)
            prefill_s = time.perf_counter() - start
            token = ids[-1]
            best = float("inf")
            wall = cpu = 0.0
            for _ in range(max(1, decode_tokens // window)):
                start, cpu_start = time.perf_counter(), time.process_time()
                for _ in range(window):
                    llm.eval([token])
                    token = (token * 17 + 3) % vocab
                elapsed = time.perf_counter() - start
                best, wall, cpu = min(best, elapsed), wall + elapsed, cpu + time.process_time() - cpu_start
            llm.reset()
            return SpeedSample(prefill_tps=len(ids) / prefill_s, decode_tps=window / best,
                               cpu_share=min(1.0, cpu / (wall * max(1, llm.n_threads))))

    # -- scoring ----------------------------------------------------------------------------
    @property
    def scorer(self):
        if self._scorer is None:
            self._scorer = open_llama(self.path, min(SCORER_CONTEXT, self.tier.context_tokens), self.tier.threads)
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
            return last_logits(llm), evaluated + len(suffix_ids)

    # -- hidden state (the probe router) ----------------------------------------------------
    def embedding(self, text: str) -> np.ndarray:
        """The model's last hidden state, mean-pooled over the text's tokens (BOS included)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = open_llama(self.path, min(SCORER_CONTEXT, self.tier.context_tokens), self.tier.threads,
                                            embedding=True)
            try:
                return np.asarray(self._embedder.embed(text, normalize=False, truncate=True), dtype=np.float64)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"llama.cpp embedding failed: {exc}") from None

    def close(self) -> None:
        """Frees the generation, scoring and embedding contexts (each reloads on next use)."""
        for llm in (self._generator, self._scorer, self._embedder):
            if llm is not None:
                llm.close()
        self._generator = self._scorer = self._embedder = None
