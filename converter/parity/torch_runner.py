"""The reference Runner: the original checkpoint's text decoder (converter/models/reference.py,
float32 arithmetic at the checkpoint's stored size) with transformers' tokenizer on its own files."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.hf_tokenizer import HfTokenized
from slmkit.converter.tokenizer_files import load_tokenizer
from slmkit.converter.models.reference import load_reference_model
from slmkit.runtime.engines.base import Decode

if TYPE_CHECKING:
    import torch

    from slmkit.converter.models.checkpoint import Checkpoint


class TorchRunner(HfTokenized):
    """Tokenizes at once; `load()` reads the model (after the caller checked it fits)."""

    name = "torch"

    def __init__(self, ckpt: Checkpoint, threads: int | None = None) -> None:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # slmkit shows its own progress
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.ckpt = ckpt
        self.tokenizer = load_tokenizer(ckpt.path)
        self.model: torch.nn.Module | None = None

    def load(self) -> None:
        self.model = load_reference_model(self.ckpt)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """transformers' forward over the prompt, then one token per forward through its KV cache, in
        float32. Raises SlmkitError before `load()`.
        """
        torch = self._torch
        if self.model is None:
            raise SlmkitError("The reference model is not loaded (TorchRunner.load).")
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), use_cache=True)
            prefill = out.logits[0].float().numpy()
            for _ in range(steps):
                row = out.logits[0, -1].float().numpy().copy()
                rows.append(row)
                token = int(row.argmax())
                tokens.append(token)
                out = self.model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
        return Decode(prefill, tokens, np.stack(rows))

    def close(self) -> None:
        """Release the model (the tokenizer stays usable): the artifact's engine loads next."""
        self.model = None
        gc.collect()
        release_freed_memory()


def release_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise: at Gemma 3 1B, 4 GB of a
    released reference stayed in the process while the artifact's engine loaded)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
