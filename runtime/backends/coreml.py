"""Core ML tiers (macOS; the same stateful program an iOS app runs). Prediction exists only on
Apple platforms, so elsewhere the tier refuses to load with a clear message."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TierSpec


def require_macos(tier_name: str) -> None:
    if sys.platform != "darwin":
        raise SlmkitError(f"Tier {tier_name} uses the coreml backend, which runs on macOS (and iOS) only.",
                          hint="On Linux, give this tier a llama.cpp (GGUF) or onnxruntime-genai model for simulation.")


class CoreMLBackend:
    """Greedy generation through the artifact's KV-cache states: one prefill call, then one token per call."""

    name = "coreml"

    def __init__(self, tier: TierSpec, folder: Path) -> None:
        require_macos(tier.name)
        import coremltools as ct
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        from tokenizers import Tokenizer

        packages = sorted(folder.glob("*.mlpackage"))
        if not packages:
            raise SlmkitError(f"Tier {tier.name}: no .mlpackage in {folder}.", hint="Convert with `slmkit convert MODEL --target coreml`.")
        self.tier = tier
        self.model = ct.models.MLModel(str(packages[0]), compute_units=ct.ComputeUnit.CPU_AND_NE)
        metadata = self.model.user_defined_metadata
        tokenizer_dir = folder / metadata.get("slmkit.tokenizer_dir", "tokenizer")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.cache_length = int(metadata.get("slmkit.cache_length", tier.context_tokens))
        self.template = ImmutableSandboxedEnvironment().from_string(config.get("chat_template") or "")
        self.bos, self.eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
        eos_id = self.tokenizer.token_to_id(self.eos) if self.eos else None
        self.stop_ids = {eos_id} if eos_id is not None else set()
        self.model_name = packages[0].name

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
        start = time.perf_counter()
        prompt = self.template.render(messages=messages, add_generation_prompt=True, bos_token=self.bos, eos_token=self.eos)
        ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids
        room = min(self.cache_length, self.tier.context_tokens) - len(ids)
        if room < 1:
            raise BackendError(f"prompt of {len(ids)} tokens does not fit the {self.cache_length}-token cache")
        state = self.model.make_state()
        generated: list[int] = []
        shown = ""
        ttft = None
        feed = ids
        for _ in range(min(max_tokens, room)):
            total = len(ids) + len(generated)
            out = self.model.predict({"input_ids": np.asarray([feed], dtype=np.int32),
                                      "attention_mask": np.ones((1, total), dtype=np.int32)}, state=state)
            token = int(np.asarray(out["logits"])[0, -1].argmax())
            if token in self.stop_ids:
                break
            generated.append(token)
            text = self.tokenizer.decode(generated)
            ttft = ttft if ttft is not None else (time.perf_counter() - start) * 1000
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown):]
                shown = text
            feed = [token]
            if time.perf_counter() - start > self.tier.timeout_s:
                raise BackendError(f"timeout after {self.tier.timeout_s:g} s")
        yield Generation(text=shown, input_tokens=len(ids), output_tokens=len(generated),
                         latency_ms=(time.perf_counter() - start) * 1000, model=self.model_name,
                         finish_reason="length" if len(generated) >= min(max_tokens, room) else "stop", ttft_ms=ttft)

    def generate(self, messages: list[dict[str, str]], max_tokens: int) -> Generation:
        *_, last = self.stream(messages, max_tokens)
        return last

    def close(self) -> None:
        self.model = None


def _token_text(value: object) -> str:
    """tokenizer_config.json writes special tokens as strings or as {"content": ...} objects."""
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value) if value else ""
