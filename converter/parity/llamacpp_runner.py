"""A GGUF run by llama.cpp (llama-cpp-python), exactly as an app or edge server would run it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.parity.runner import Decode, TokenizerInfo


class LlamaCppRunner:
    name = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int, threads: int | None = None) -> None:
        from llama_cpp import Llama

        try:
            self.llm = Llama(
                model_path=str(path), n_ctx=n_ctx, n_batch=512, logits_all=True, verbose=False,
                n_threads=threads, n_threads_batch=threads,
            )
        except (ValueError, RuntimeError) as exc:
            raise SlmkitError(f"llama.cpp cannot load {path}: {exc}", hint="The GGUF is corrupt or from an unsupported converter.") from None
        self.n_vocab = self.llm.n_vocab()

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def _check_fits(self, n: int) -> None:
        if n > self.llm.n_ctx():
            raise SlmkitError(f"A parity prompt needs {n} tokens; the llama.cpp context holds {self.llm.n_ctx()}.")

    def greedy(self, ids: list[int], steps: int) -> Decode:
        self._check_fits(len(ids) + steps)
        self.llm.reset()
        self.llm.eval(ids)
        # A view, not a copy (Gemma: 1 MB per position); valid until this runner's next call.
        prefill = self.llm.scores[: len(ids)]
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        for _ in range(steps):
            row = np.array(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float32)
            rows.append(row)
            token = int(row.argmax())
            tokens.append(token)
            self.llm.eval([token])
        return Decode(prefill, tokens, np.stack(rows))

    def _token_text(self, key: str) -> str:
        token_id = self.llm.metadata.get(key)
        return "" if token_id is None else self.llm.detokenize([int(token_id)], special=True).decode("utf-8", "replace")

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The GGUF's own chat template rendered as llama-cpp-python's chat handler renders it."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(self.llm.metadata["tokenizer.chat_template"],
                                        eos_token=self._token_text("tokenizer.ggml.eos_token_id"),
                                        bos_token=self._token_text("tokenizer.ggml.bos_token_id"),
                                        add_generation_prompt=True)
        return formatter(messages=messages).prompt

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
