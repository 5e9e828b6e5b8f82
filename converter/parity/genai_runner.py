"""The artifact folder run by onnxruntime-genai, exactly as an Android/iOS app using it would.

Its own tokenizer (onnxruntime-extensions), chat template, model session and KV-cache handling
are used; the logits are read after the prefill and after each appended token.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.parity.runner import Decode, TokenizerInfo
from slmkit.runtime.chat_template import template_source


class GenaiRunner:
    def __init__(self, artifact: Path, threads: int | None, model_file: str | None = None,
                 name: str = "onnxruntime-genai") -> None:
        import onnxruntime_genai as og

        self.name = name
        self._og = og
        config = og.Config(str(artifact))
        decoder: dict = {}
        if threads:
            decoder["session_options"] = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        if model_file:
            decoder["filename"] = model_file
        if decoder:
            config.overlay(json.dumps({"model": {"decoder": decoder}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # genai raises RuntimeError with ORT's message
            raise SlmkitError(f"onnxruntime-genai cannot load {artifact}: {exc}") from None
        self.tokenizer = og.Tokenizer(self.model)
        # genai's encode() adds no special tokens by default (Gemma would lose its BOS); an app makes
        # the same call to tokenize as transformers does (docs/onnx.md).
        self.tokenizer.update_options(add_special_tokens="true")
        self.context_length = json.loads((artifact / "genai_config.json").read_text(encoding="utf-8"))["model"]["context_length"]
        self.chat_template = template_source(artifact)  # slmkit writes it into tokenizer_config.json, where genai reads it
        self.artifact = artifact
        self.fold_system: bool | None = None

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        if special:
            return [int(t) for t in self.tokenizer.encode(text)]
        self.tokenizer.update_options(add_special_tokens="false")
        try:
            return [int(t) for t in self.tokenizer.encode(text)]
        finally:
            self.tokenizer.update_options(add_special_tokens="true")

    def greedy(self, ids: list[int], steps: int) -> Decode:
        og = self._og
        if len(ids) + steps > self.context_length:
            raise SlmkitError(f"A parity prompt needs {len(ids) + steps} tokens; the model's context is {self.context_length}.",
                              hint="Shorten the prompts passed with --prompts, or lower --steps.")
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + steps + 1, do_sample=False, top_k=1)
        generator = og.Generator(self.model, params)
        generator.append_tokens(np.array([ids], dtype=np.int32))
        prefill = np.array(generator.get_output("logits"), dtype=np.float32)[0]
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        for _ in range(steps):
            row = np.array(generator.get_logits(), dtype=np.float32).reshape(-1)
            rows.append(row)
            # Greedy choice fed back with append_tokens, not generate_next_token: genai stops at
            # EOS, while parity keeps comparing the continuation the reference produces.
            tokens.append(int(row.argmax()))
            generator.append_tokens(np.array([[tokens[-1]]], dtype=np.int32))
        return Decode(prefill, tokens, np.stack(rows) if rows else np.zeros((0, prefill.shape[-1]), np.float32))

    def tokenizer_info(self) -> TokenizerInfo:
        bos = int(self.tokenizer.bos_token_id) if self.tokenizer.bos_token_id >= 0 else None
        eos_ids = [int(t) for t in self.tokenizer.eos_token_ids]
        probe = self.tokenize("a")
        return TokenizerInfo(bos_id=bos, eos_id=eos_ids[0] if eos_ids else None,
                             adds_bos=bos is not None and bool(probe) and probe[0] == bos,
                             chat_template=self.chat_template, extra={"eos_ids": eos_ids})

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        # No template_str: genai must find the template in the artifact by itself, as an app's call would.
        from slmkit.runtime.backends.genai import refuses_system, render_chat

        if self.fold_system is None:
            self.fold_system = refuses_system(self.artifact)
        return render_chat(self.tokenizer, messages, self.fold_system)

    def close(self) -> None:
        del self.tokenizer
        del self.model
