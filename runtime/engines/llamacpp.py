"""llama.cpp (llama-cpp-python) over a GGUF: how slmkit opens the file, renders and tokenizes the
chat prompt and reads logits. The runtime's llama.cpp tiers (runtime/backends/llamacpp.py) and the
GGUF target's parity (LlamaCppRunner) both use these functions."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.runtime.chat_template import ChatTemplate
from slmkit.runtime.engines.base import Decode, TokenizerInfo
from slmkit.runtime.errors import SlmkitError

N_BATCH = 512  # tokens per llama_decode call in a prefill (llama-cpp-python's default)


def open_llama(path: Path, n_ctx: int, threads: int | None, *, logits_all: bool = False,
               embedding: bool = False) -> Any:
    """A `llama_cpp.Llama` holding `n_ctx` tokens; `threads` None lets llama.cpp choose.

    `logits_all` keeps every position's logits (parity reads a whole prefill); `embedding` opens a
    mean-pooling embedding context whose batch is the whole context. Raises SlmkitError when
    llama.cpp cannot load the file (corrupt, or an architecture this llama.cpp does not know).
    """
    import llama_cpp

    try:
        if embedding:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                                   n_threads_batch=threads, embedding=True,
                                   pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=N_BATCH, n_threads=threads,
                               n_threads_batch=threads, logits_all=logits_all, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise SlmkitError(f"llama.cpp cannot load {path}: {exc}",
                          hint="The GGUF is corrupt or from an unsupported converter.") from None


def gguf_chat_template(llm: Any, name: str) -> ChatTemplate | None:
    """A GGUF's `tokenizer.chat_template` with its BOS/EOS texts, compiled in transformers' sandboxed
    environment (runtime/chat_template.py); None when the file has no template."""
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


def prompt_ids(llm: Any, prompt: str) -> list[int]:
    """Token ids of a rendered chat prompt: special-token text read as special tokens and no BOS
    added (the template writes it), as transformers' `apply_chat_template(tokenize=True)` does."""
    return llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)


def last_logits(llm: Any) -> np.ndarray:
    """Raw logits [vocab] (float32, a copy) after the last evaluated token, read with
    `llama_get_logits_ith(-1)`: the context needs no per-position logits buffer."""
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(llm.n_vocab(),)).copy()


class LlamaCppRunner:
    """A GGUF as parity drives it (runtime/engines/base.py `Runner`), opened, templated and tokenized
    with the functions above.

    `window_of(path)`: the original context of a Phi-3-style long/short-RoPE GGUF, or None (the GGUF
    target reads it from the file; called once llama.cpp has accepted the file). Prompts that fit it
    run in a context of that size, where llama.cpp uses the short factors, as an app running within
    the window does.
    """

    name = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int, threads: int | None = None,
                 window_of: Callable[[Path], int | None] | None = None) -> None:
        self.path, self.threads = path, threads
        self.llm = open_llama(path, n_ctx, threads, logits_all=True)
        self.n_vocab = self.llm.n_vocab()
        window = window_of(path) if window_of is not None else None
        self._window = window if window is not None and window < self.llm.n_ctx() else None
        self._window_llm: Any = None

    def _context_for(self, n: int) -> Any:
        """The context a prompt of `n` tokens runs in: within a long-RoPE window, one of its size."""
        if self._window is None or n > self._window:
            return self.llm
        if self._window_llm is None:
            self._window_llm = open_llama(self.path, self._window, self.threads, logits_all=True)
        return self._window_llm

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=special, special=True)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """`llm.eval` of the prompt (every position's logits kept: logits_all), then one token per eval.
        Raises SlmkitError when the prompt and steps do not fit the context.
        """
        if len(ids) + steps > self.llm.n_ctx():
            raise SlmkitError(f"A parity prompt needs {len(ids) + steps} tokens; the llama.cpp context holds "
                              f"{self.llm.n_ctx()}.")
        llm = self._context_for(len(ids) + steps)
        llm.reset()
        llm.eval(ids)
        # A view, not a copy (Gemma: 1 MB per position); valid until this runner's next call.
        prefill = llm.scores[: len(ids)]
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        for _ in range(steps):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            rows.append(row)
            tokens.append(int(row.argmax()))
            llm.eval([tokens[-1]])
        return Decode(prefill, tokens, np.stack(rows))

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The GGUF's own chat template rendered as the runtime's llama.cpp tier renders it.
        Raises SlmkitError when the file has none or the template refuses the conversation."""
        template = gguf_chat_template(self.llm, self.path.name)
        if template is None:
            raise SlmkitError("The GGUF has no chat template.")
        return template.render_chat(messages)

    def tokenizer_info(self) -> TokenizerInfo:
        """BOS/EOS ids and chat template from the GGUF's tokenizer.* metadata, and its pre-tokenizer name."""
        meta = self.llm.metadata

        def as_int(key: str) -> int | None:
            return int(meta[key]) if key in meta else None

        bos = as_int("tokenizer.ggml.bos_token_id")
        probe = self.llm.tokenize(b"a", add_bos=True, special=True)
        return TokenizerInfo(
            bos_id=bos,
            eos_id=as_int("tokenizer.ggml.eos_token_id"),
            adds_bos=bos is not None and len(probe) > 0 and probe[0] == bos,
            chat_template=meta.get("tokenizer.chat_template"),
            extra={"pre": meta.get("tokenizer.ggml.pre"), "model": meta.get("tokenizer.ggml.model")},
        )

    def close(self) -> None:
        self.llm.close()
        if self._window_llm is not None:
            self._window_llm.close()
