"""An ONNX (or .ort) decoder run by a plain onnxruntime InferenceSession, as a hand-written app loop
runs it: prefill with an empty past, then one token at a time feeding each `present.*` back as
`past_key_values.*`. The ONNX target's `onnxruntime` parity engine (converter/targets/onnx/runner.py)
and bench/onnx_decode.py drive decoders through `OrtSession`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmkit.runtime.errors import SlmkitError

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def load_session(path: Path, threads: int | None):
    """An `onnxruntime.InferenceSession` on the CPU provider; `threads` sets intra-op threads.
    Raises SlmkitError with a hint (the opset/version one when that is the cause) if ORT refuses it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind error classes
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "The file is corrupt or was written for another ONNX Runtime."
        if "opset" in message.lower() or "version" in message.lower():
            hint = (f"This onnxruntime ({ort.__version__}) does not support the model's opset or operator versions; "
                    "install the onnxruntime version recorded in the artifact's manifest.json.")
        raise SlmkitError(f"ONNX Runtime cannot load {path}: {message}", hint=hint) from None


class OrtSession:
    """The KV-cache loop over one session; knows the cache layout from the graph's inputs."""

    def __init__(self, path: Path, threads: int | None) -> None:
        self.session = load_session(path, threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = [name for name in inputs if name.startswith("past_key_values.")]
        self.present_names = [name.replace("past_key_values.", "present.") for name in self.past_names]
        first = inputs[self.past_names[0]]
        self.kv_heads, self.head_dim = first.shape[1], first.shape[3]
        self.kv_dtype = _ORT_TYPES[first.type]
        self.has_positions = "position_ids" in inputs

    def _run(self, ids: list[int], past: list[np.ndarray], start: int) -> tuple[np.ndarray, list[np.ndarray]]:
        total = start + len(ids)
        feed = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, total), dtype=np.int64)}
        if self.has_positions:
            feed["position_ids"] = np.arange(start, total, dtype=np.int64)[None]
        feed.update(zip(self.past_names, past))
        logits, *present = self.session.run(["logits", *self.present_names], feed)
        return logits[0], present

    def greedy_logits(self, ids: list[int], steps: int) -> list[np.ndarray]:
        """[prefill logits, step 1 logits, ...]: what greedy decoding through the cache sees."""
        empty = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        logits, past = self._run(ids, [empty] * len(self.past_names), 0)
        rows = [logits]
        position = len(ids)
        for _ in range(steps):
            token = int(rows[-1][-1].argmax())
            logits, past = self._run([token], past, position)
            position += 1
            rows.append(logits)
        return rows
