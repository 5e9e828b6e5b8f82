"""onnxruntime-genai over an ONNX artifact folder, as an Android/iOS app loads it: its own tokenizer
(onnxruntime-extensions), chat template engine, model session and KV-cache handling. The runtime's
genai tiers (runtime/backends/genai.py) and the ONNX target's parity (GenaiRunner) both open,
template and tokenize through `GenaiEngine`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from slmkit.runtime.chat_template import fold_system, load_chat_template, template_source
from slmkit.runtime.engines.base import Decode, TokenizerInfo
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.validation import RelativePath, inside, read_json, validated


class _GenaiDecoder(BaseModel):
    model_config = ConfigDict(extra="allow")

    filename: RelativePath


class _GenaiModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    context_length: int = Field(ge=1)
    decoder: _GenaiDecoder


class GenaiConfig(BaseModel):
    """What slmkit reads of genai_config.json before onnxruntime-genai opens it: the context length
    and a decoder file inside the folder (the rest is genai's own schema)."""

    model_config = ConfigDict(extra="allow")

    model: _GenaiModel


class GenaiEngine:
    """One loaded artifact folder (`genai_config.json` + model + tokenizer files).

    `threads` sets ONNX Runtime's intra-op threads (None: its default); `model_file` overrides the
    decoder file genai_config.json names (parity runs `model.ort` as well as `model.onnx`).
    Raises SlmkitError when the folder is not an onnxruntime-genai folder or genai cannot load it.
    """

    def __init__(self, folder: Path, threads: int | None = None, model_file: str | None = None) -> None:
        import onnxruntime_genai as og

        config_file = folder / "genai_config.json"
        if not config_file.is_file():
            raise SlmkitError(f"{folder} is not an onnxruntime-genai folder (no genai_config.json).",
                              hint="Convert with `slmkit convert MODEL --target onnx`.")
        checked = validated(GenaiConfig, read_json(config_file, "an onnxruntime-genai config (JSON)"), config_file)
        inside(folder, checked.model.decoder.filename, config_file)
        self.og, self.folder = og, folder
        config = og.Config(str(folder))
        decoder: dict[str, Any] = {}
        if threads:
            decoder["session_options"] = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        if model_file:
            decoder["filename"] = model_file
        if decoder:
            config.overlay(json.dumps({"model": {"decoder": decoder}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # genai raises RuntimeError with ORT's message
            raise SlmkitError(f"onnxruntime-genai cannot load {folder}: {exc}") from None
        self.tokenizer = og.Tokenizer(self.model)
        # genai's encode() adds no special tokens by default (Gemma would lose its BOS); an app makes
        # the same call to tokenize as transformers does (docs/onnx.md).
        self.tokenizer.update_options(add_special_tokens="true")
        self.context_length = checked.model.context_length
        template = load_chat_template(folder)
        self.fold_system = template is not None and template.refuses_system()

    def encode(self, text: str, special: bool = True) -> list[int]:
        """Token ids; `special` adds the tokenizer's BOS/EOS (special-token text is always read as
        the special token)."""
        if special:
            return [int(t) for t in self.tokenizer.encode(text)]
        self.tokenizer.update_options(add_special_tokens="false")
        try:
            return [int(t) for t in self.tokenizer.encode(text)]
        finally:
            self.tokenizer.update_options(add_special_tokens="true")

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The chat prompt as genai's own template engine renders it (an app's call, no template
        passed: genai finds it in the folder), a system prompt folded into the first user turn
        first when the template refuses the role (runtime/chat_template.py `fold_system`).
        Raises SlmkitError when genai's template engine fails."""
        if self.fold_system:
            messages = fold_system(messages)
        try:
            return self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        except RuntimeError as exc:  # genai reports template errors as RuntimeError
            raise SlmkitError(f"onnxruntime-genai's chat template failed: {str(exc).splitlines()[0]}") from None

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The rendered chat prompt's ids; the template writes any BOS, as
        `apply_chat_template(tokenize=True)` does."""
        return self.encode(self.render_chat(messages), special=False)

    def generator(self, max_length: int) -> Any:
        """A greedy `og.Generator` holding up to `max_length` tokens (prompt included)."""
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, do_sample=False, top_k=1)
        return self.og.Generator(self.model, params)

    def close(self) -> None:
        self.tokenizer = None
        self.model = None


class GenaiRunner:
    """The artifact as parity drives it (runtime/engines/base.py `Runner`) through a `GenaiEngine`:
    logits read after the prefill and after each appended token."""

    def __init__(self, folder: Path, threads: int | None, model_file: str | None = None,
                 name: str = "onnxruntime-genai") -> None:
        self.name = name
        self.engine = GenaiEngine(folder, threads, model_file)

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.engine.encode(text, special)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """Prefill through `append_tokens` (logits of every prompt position from `get_output("logits")`),
        then one appended token per step. Raises SlmkitError past the model's context_length.
        """
        context = self.engine.context_length
        if len(ids) + steps > context:
            raise SlmkitError(f"A parity prompt needs {len(ids) + steps} tokens; the model's context is {context}.",
                              hint="Shorten the prompts passed with --prompts, or lower --steps.")
        generator = self.engine.generator(len(ids) + steps + 1)
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
        """genai's own BOS and EOS ids, and the chat template slmkit wrote into tokenizer_config.json."""
        tokenizer = self.engine.tokenizer
        bos = int(tokenizer.bos_token_id) if tokenizer.bos_token_id >= 0 else None
        eos_ids = [int(t) for t in tokenizer.eos_token_ids]
        probe = self.tokenize("a")
        # slmkit writes the template into tokenizer_config.json, where genai reads it
        return TokenizerInfo(bos_id=bos, eos_id=eos_ids[0] if eos_ids else None,
                             adds_bos=bos is not None and bool(probe) and probe[0] == bos,
                             chat_template=template_source(self.engine.folder), extra={"eos_ids": eos_ids})

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.engine.render_chat(messages)

    def close(self) -> None:
        self.engine.close()
