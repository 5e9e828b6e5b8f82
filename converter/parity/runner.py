"""The engine-neutral view parity needs of a model: tokenize, logits, greedy decode via the cache.

Every target plugs in one Runner; the PyTorch runner is the reference they are all held to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Decode:
    """Greedy continuation produced one token at a time through the engine's KV cache."""

    tokens: list[int]
    logits: np.ndarray  # [steps, vocab]: the distribution each token was chosen from


@dataclass
class TokenizerInfo:
    bos_id: int | None
    eos_id: int | None
    adds_bos: bool
    chat_template: str | None
    extra: dict[str, object] = field(default_factory=dict)


class Runner(Protocol):
    name: str

    def tokenize(self, text: str) -> list[int]:
        """Ids as the engine's own tokenizer produces them, special tokens included."""

    def logits(self, ids: list[int]) -> np.ndarray:
        """[len(ids), vocab] float32 logits from one full-sequence (prefill) pass."""

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """Prefill `ids`, then decode `steps` tokens one by one through the KV cache."""

    def tokenizer_info(self) -> TokenizerInfo: ...

    def close(self) -> None: ...
