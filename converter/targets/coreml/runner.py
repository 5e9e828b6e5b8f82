"""A Core ML package driven like an app drives it (runtime/engines/coreml.py: chunked prefill, then
one token per call, cache in states).

On macOS the engine `coreml` runs the real Core ML runtime (`MLModel.predict` with `make_state()`);
everywhere, `coreml-evaluator` runs the same program in the numpy reference evaluator with fp16
rounding after every fp16 op (device-like), and `coreml-evaluator-fp32` without it (exact math,
to check the conversion itself). Tokenization uses the artifact's tokenizer files.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.hf_tokenizer import HfTokenized
from slmkit.converter.tokenizer_files import load_tokenizer
from slmkit.runtime.chat_template import load_chat_template
from slmkit.runtime.engines import coreml
from slmkit.runtime.engines.base import Decode


def open_program(package: Path, engine: str) -> Any:
    """Something with `make_state()` and `predict(inputs, state)`: Core ML itself or the evaluator."""
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator, quiet_coremltools

    if engine == "coreml":
        if platform.system() != "Darwin":
            raise SlmkitError("The Core ML runtime runs on macOS only.",
                              hint="On this machine use --engine coreml-evaluator (the numpy reference evaluator).")
        with quiet_coremltools():
            return coreml.open_mlmodel(package, "CPU_ONLY")
    return MilEvaluator(package, round_fp16=engine != "coreml-evaluator-fp32")


def _exact_in_half(values: np.ndarray) -> bool:
    """Whether float32 `values` survive a round trip through fp16 unchanged (inf and NaN included)."""
    return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values, equal_nan=True))


class CoremlRunner(HfTokenized):
    def __init__(self, package: Path, tokenizer_dir: Path, engine: str, threads: int | None = None) -> None:
        # The evaluator's numpy matmuls use BLAS's own threading; `threads` does not apply.
        self.name = engine
        self.tokenizer = load_tokenizer(tokenizer_dir)
        self.template = load_chat_template(tokenizer_dir)
        self.program = open_program(package, engine)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        """Prefill in chunks through the cache, then decode, with the runtime's calls
        (runtime/engines/coreml.py). The prefill logits are kept as fp16 when that holds them
        exactly (the same numbers)."""
        state = self.program.make_state()
        prefill: np.ndarray | None = None
        for start, logits in coreml.prefill(self.program, state, ids):
            if prefill is None:  # fp16 while every value is one (a program computing in fp16): half the memory
                prefill = np.empty((len(ids), logits.shape[-1]), dtype=np.float16)
            if prefill.dtype == np.float16 and not _exact_in_half(logits):
                prefill = prefill.astype(np.float32)
            prefill[start:start + len(logits)] = logits
            del logits
        assert prefill is not None
        rows = [prefill[-1]]
        tokens = [int(rows[-1].argmax())]
        for _ in range(steps - 1):
            rows.append(coreml.step(self.program, state, [tokens[-1]], len(ids) + len(tokens))[-1])
            tokens.append(int(rows[-1].argmax()))
        return Decode(prefill, tokens[:steps], np.stack(rows[:steps]))

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The chat prompt as the runtime's Core ML tier renders it (runtime/chat_template.py)."""
        if self.template is None:
            raise SlmkitError("The artifact's tokenizer has no chat template.")
        return self.template.render_chat(messages)

    def details(self) -> dict[str, object]:
        """For the report: fp16 overflows the evaluator saw (inf on a device computing in fp16)."""
        overflows = getattr(self.program, "fp16_overflows", None)
        return {} if overflows is None else {"fp16_overflows": dict(overflows)}

    def close(self) -> None:
        del self.program
