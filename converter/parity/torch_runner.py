"""The reference: the original checkpoint run by transformers in fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmkit.converter.parity.hf_tokenizer import HfTokenized, load_tokenizer
from slmkit.converter.parity.runner import Decode


class TorchRunner(HfTokenized):
    name = "torch"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # slmkit shows its own progress
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        self.model.eval()

    def greedy(self, ids: list[int], steps: int) -> Decode:
        torch = self._torch
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), use_cache=True)
            prefill = out.logits[0].float().numpy()
            for _ in range(steps):
                row = out.logits[0, -1].float().numpy()
                rows.append(row)
                token = int(row.argmax())
                tokens.append(token)
                out = self.model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
        return Decode(prefill, tokens, np.stack(rows))

    def close(self) -> None:
        del self.model
