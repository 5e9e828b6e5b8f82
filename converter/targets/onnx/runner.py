"""The ONNX target's `onnxruntime` parity engine: the graph run by a plain InferenceSession
(runtime/engines/onnxruntime.py `OrtSession`), tokenized by transformers on the artifact's own
tokenizer files, so it checks the graph; GenaiRunner checks genai's tokenizer and generation loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmkit.converter.models.hf_tokenizer import HfTokenized
from slmkit.converter.tokenizer_files import load_tokenizer
from slmkit.runtime.engines.base import Decode
from slmkit.runtime.engines.onnxruntime import OrtSession


class OrtRunner(HfTokenized):
    def __init__(self, artifact: Path, model_file: str, threads: int | None, name: str = "onnxruntime") -> None:
        self.name = name
        self.cache = OrtSession(artifact / model_file, threads)
        self.tokenizer = load_tokenizer(artifact)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """Prefill and cached steps through `OrtSession`, each step's distribution the last position of its run."""
        rows = self.cache.greedy_logits(ids, max(steps - 1, 0))
        # Step i's distribution is the last position of run i (run 0 is the prefill).
        chosen = [rows[i][-1] for i in range(steps)]
        tokens = [int(row.argmax()) for row in chosen]
        return Decode(rows[0].astype(np.float32, copy=False), tokens, np.stack(chosen).astype(np.float32, copy=False))

    def close(self) -> None:
        del self.cache
