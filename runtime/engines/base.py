"""The engine-neutral view parity needs of a model: tokenize, logits, greedy decode via the cache.

Each engine module here (llama.cpp, onnxruntime-genai, onnxruntime, Core ML) opens a model the way
the runtime's tier backends open it and implements this Runner over that same code path; every
target's parity plugs one in, held to the PyTorch reference (converter/parity/torch_runner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Decode:
    """One prefill pass, then a greedy continuation one token at a time through the KV cache."""

    prefill: np.ndarray  # [len(ids), vocab]: logits at every prompt position (may be an engine buffer view)
    tokens: list[int]
    logits: np.ndarray  # [steps, vocab]: the distribution each new token was chosen from


@dataclass
class TokenizerInfo:
    """What a tokenizer does with special tokens: its BOS/EOS ids (None when it has none), whether
    encoding adds BOS, and the chat template it carries (Jinja source)."""

    bos_id: int | None
    eos_id: int | None
    adds_bos: bool
    chat_template: str | None
    extra: dict[str, object] = field(default_factory=dict)


class Runner(Protocol):
    """One model as parity drives it; `name` is the engine's (`llama.cpp`, `onnxruntime-genai`, ...)."""

    name: str

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """Ids as the engine's own tokenizer produces them; special-token text is always read as the
        special token, and `special` adds the tokenizer's BOS/EOS. A rendered chat prompt is
        tokenized with special=False, as transformers' apply_chat_template(tokenize=True) and every
        slmkit runtime do (the template writes the BOS itself)."""

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """Prefill `ids` (keeping every position's logits), then decode `steps` tokens via the cache.
        Raises SlmkitError when `len(ids) + steps` exceeds the context the engine was opened with."""

    def tokenizer_info(self) -> TokenizerInfo: ...

    def close(self) -> None: ...
