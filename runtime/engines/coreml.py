"""A stateful Core ML decoder (the program `slmkit convert --target coreml` writes) driven as an app
drives it: the prompt prefilled in chunks through the KV-cache states, then one token per call.

The runtime's Core ML tiers (runtime/backends/coreml.py) and the Core ML target's parity
(converter/targets/coreml/runner.py) both call `prefill` and `step`. A "program" is anything with
`make_state()` and `predict(inputs, state)`: Core ML's `MLModel` on macOS, or the converter's numpy
reference evaluator elsewhere. Prediction exists only on Apple platforms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slmkit.runtime.errors import SlmkitError

# Tokens per prefill call: a 900-token pass over a 262K vocabulary is ~1 GB of float32 logits, and
# apps prefill long prompts in pieces for the same reason.
PREFILL_CHUNK = 128


def open_mlmodel(package: Path, compute_units: str = "CPU_AND_NE") -> Any:
    """`coremltools.models.MLModel` over `package` with `compute_units` (a `ct.ComputeUnit` name);
    macOS only (callers say so before calling: off macOS coremltools loads nothing to predict with).

    Raises SlmkitError when Core ML cannot load or compile the package.
    """
    import coremltools as ct

    try:
        return ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, compute_units))
    except Exception as exc:  # Core ML reports compile failures as generic exceptions
        raise SlmkitError(f"Core ML cannot load {package}: {exc}") from None


def step(program: Any, state: Any, feed: Sequence[int], total: int) -> np.ndarray:
    """Logits [len(feed), vocab] (float32) for `feed`, appended to a cache then holding `total`
    tokens (feed included): `input_ids` [1, len(feed)] and `attention_mask` [1, total], int32."""
    out = program.predict({"input_ids": np.asarray([list(feed)], dtype=np.int32),
                           "attention_mask": np.ones((1, total), dtype=np.int32)}, state)
    return np.asarray(out["logits"][0], dtype=np.float32)


def prefill(program: Any, state: Any, ids: Sequence[int], chunk: int = PREFILL_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """The prompt through the cache `chunk` tokens per call: (start position, logits [n, vocab]) per call."""
    for start in range(0, len(ids), chunk):
        piece = ids[start:start + chunk]
        yield start, step(program, state, piece, start + len(piece))


def prefill_last(program: Any, state: Any, ids: Sequence[int]) -> np.ndarray:
    """Logits [vocab] after the whole prompt, prefilled in chunks (only the last row is kept)."""
    last: np.ndarray | None = None
    for _start, logits in prefill(program, state, ids):
        last = logits[-1].copy()
        del logits
    if last is None:
        raise SlmkitError("An empty prompt cannot be prefilled.")
    return last
