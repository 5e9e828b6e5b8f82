"""The reference: the original checkpoint run by transformers in fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmkit.converter.parity.runner import Decode, TokenizerInfo


class TorchRunner:
    name = "torch"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # slmkit shows its own progress
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        self.model.eval()

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

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

    def tokenizer_info(self) -> TokenizerInfo:
        tok = self.tokenizer
        probe = tok("a", add_special_tokens=True)["input_ids"]
        adds_bos = tok.bos_token_id is not None and len(probe) > 0 and probe[0] == tok.bos_token_id
        template = tok.chat_template if isinstance(tok.chat_template, str) else None
        return TokenizerInfo(tok.bos_token_id, tok.eos_token_id, adds_bos, template)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def close(self) -> None:
        del self.model
