"""A GGUF run by llama.cpp (llama-cpp-python), exactly as an app or edge server would run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.parity.runner import Decode, TokenizerInfo


def longrope_window(path: Path) -> int | None:
    """The original context of a GGUF with Phi-3-style long/short RoPE factors, else None.

    llama.cpp applies the long factors to every position when its context is larger than this
    window (`llama_model::get_rope_factors`: n_ctx_per_seq > n_ctx_orig_yarn), transformers when
    the sequence is longer (`_longrope_frequency_update`). An app running a context within the
    window gets the short factors, so parity runs prompts that fit in a context of that size.
    """
    from gguf import GGUFReader

    reader = GGUFReader(path)
    if not any(t.name == "rope_factors_long.weight" for t in reader.tensors):
        return None
    arch = reader.fields["general.architecture"].contents()
    field = reader.fields.get(f"{arch}.rope.scaling.original_context_length")
    return int(field.contents()) if field is not None else None


class LlamaCppRunner:
    name = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int, threads: int | None = None) -> None:
        self.path, self.threads = path, threads
        self.llm = self._load(n_ctx)
        self.n_vocab = self.llm.n_vocab()
        window = longrope_window(path)
        self._window = window if window is not None and window < self.llm.n_ctx() else None
        self._window_llm: Any = None

    def _load(self, n_ctx: int) -> Any:
        from llama_cpp import Llama

        try:
            return Llama(model_path=str(self.path), n_ctx=n_ctx, n_batch=512, logits_all=True, verbose=False,
                         n_threads=self.threads, n_threads_batch=self.threads)
        except (ValueError, RuntimeError) as exc:
            raise SlmkitError(f"llama.cpp cannot load {self.path}: {exc}",
                              hint="The GGUF is corrupt or from an unsupported converter.") from None

    def _context_for(self, n: int) -> Any:
        """The context a prompt of `n` tokens runs in: within a longrope window, one of its size."""
        if self._window is None or n > self._window:
            return self.llm
        if self._window_llm is None:
            self._window_llm = self._load(self._window)
        return self._window_llm

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=special, special=True)

    def _check_fits(self, n: int) -> None:
        if n > self.llm.n_ctx():
            raise SlmkitError(f"A parity prompt needs {n} tokens; the llama.cpp context holds {self.llm.n_ctx()}.")

    def greedy(self, ids: list[int], steps: int) -> Decode:
        self._check_fits(len(ids) + steps)
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
            token = int(row.argmax())
            tokens.append(token)
            llm.eval([token])
        return Decode(prefill, tokens, np.stack(rows))

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The GGUF's own chat template rendered as the runtime's llama.cpp tier renders it."""
        from slmkit.runtime.backends.llamacpp import gguf_chat_template

        template = gguf_chat_template(self.llm, self.path.name)
        if template is None:
            raise SlmkitError("The GGUF has no chat template.")
        return template.render_chat(messages)

    def tokenizer_info(self) -> TokenizerInfo:
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
