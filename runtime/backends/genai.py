"""Local tiers on onnxruntime-genai (the ONNX artifact folder an Android/iOS app loads)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TierSpec


class GenaiBackend:
    name = "onnxruntime-genai"

    def __init__(self, tier: TierSpec, folder: Path) -> None:
        import onnxruntime_genai as og

        if not (folder / "genai_config.json").is_file():
            raise SlmkitError(f"Tier {tier.name}: {folder} is not an onnxruntime-genai folder (no genai_config.json).",
                              hint="Convert with `slmkit convert MODEL --target onnx`.")
        self._og = og
        self.tier = tier
        self.folder = folder
        config = og.Config(str(folder))
        if tier.threads:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": tier.threads, "inter_op_num_threads": 1}}}}))
        try:
            self.model = og.Model(config)
        except Exception as exc:  # genai raises RuntimeError with ORT's message
            raise SlmkitError(f"onnxruntime-genai cannot load {folder}: {exc}") from None
        self.tokenizer = og.Tokenizer(self.model)
        self.tokenizer.update_options(add_special_tokens="true")

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
        og = self._og
        start = time.perf_counter()
        prompt = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        ids = self.tokenizer.encode(prompt)
        room = self.tier.context_tokens - len(ids)
        if room < 1:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.tier.context_tokens}-token context")
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + min(max_tokens, room), do_sample=False)
        generator = og.Generator(self.model, params)
        stream = self.tokenizer.create_stream()
        pieces: list[str] = []
        ttft = None
        try:
            generator.append_tokens(np.asarray([ids], dtype=np.int32))
            while not generator.is_done():
                generator.generate_next_token()
                piece = stream.decode(int(generator.get_next_tokens()[0]))
                ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
                if piece:
                    pieces.append(piece)
                    yield piece
                if time.perf_counter() - start > self.tier.timeout_s:
                    raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
        except RuntimeError as exc:
            raise BackendError(f"onnxruntime-genai failed: {exc}") from None
        output = len(generator.get_sequence(0)) - len(ids)
        yield Generation(text="".join(pieces), input_tokens=len(ids), output_tokens=output,
                         latency_ms=(time.perf_counter() - start) * 1000, model=self.folder.name,
                         finish_reason="length" if output >= min(max_tokens, room) else "stop", ttft_ms=ttft)

    def generate(self, messages: list[dict[str, str]], max_tokens: int) -> Generation:
        *_, last = self.stream(messages, max_tokens)
        return last

    def close(self) -> None:
        self.model = None
