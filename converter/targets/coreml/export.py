"""PyTorch text decoder -> stateful Core ML program (iOS 18 / macOS 15 `mlprogram`).

One model serves prefill and decode: `input_ids` [1, n] and `attention_mask` [1, past + n]
(ones; its length tells the model where the new tokens go) -> `logits` [1, n, vocab]. The KV
cache lives in two fp16 states, `key_cache` / `value_cache` [layers, 1, kv_heads, cache_length,
head_dim], updated in place, as in Apple's stateful Llama sample. The wrapper is traced with
`torch.jit.trace` (torch.export cannot express the flexible lengths yet) and builds its own
masks (`converter.models.text_decoder.attention_masks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.text_decoder import DecoderShape, attention_masks
from slmkit.converter.targets.coreml.evaluator import quiet_coremltools

if TYPE_CHECKING:
    import torch

INPUT_IDS, ATTENTION_MASK, LOGITS = "input_ids", "attention_mask", "logits"
KEY_CACHE, VALUE_CACHE = "key_cache", "value_cache"
CACHE_MULTIPLE = 32  # Core ML wants state lengths in multiples of 32 (coremltools #2631)
# Far below any attention score, yet a score added to it stays inside fp16 (whose lowest is -65504).
MASKED = -30000.0


@dataclass(frozen=True)
class StatefulLayout:
    """The program's interface as an app sees it (also written to the manifest)."""

    cache_length: int
    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int

    @property
    def state_shape(self) -> tuple[int, int, int, int, int]:
        return (self.layers, 1, self.kv_heads, self.cache_length, self.head_dim)

    def describe(self) -> dict[str, object]:
        return {
            "inputs": {INPUT_IDS: "int32 [1, n], 1 <= n <= cache_length: the new tokens",
                       ATTENTION_MASK: "int32 [1, past + n]: ones; its length places the new tokens in the cache"},
            "outputs": {LOGITS: f"float [1, n, {self.vocab_size}]"},
            "states": {name: f"fp16 {list(self.state_shape)} (layers, batch, kv_heads, position, head_dim)"
                       for name in (KEY_CACHE, VALUE_CACHE)},
            "cache_length": self.cache_length,
        }


def cache_length_for(shape: DecoderShape, requested: int) -> int:
    """The state length: the request rounded up to a multiple of 32, never past the model's context."""
    if requested < 1:
        raise SlmkitError(f"--cache-length must be positive, got {requested}.")
    rounded = -(-requested // CACHE_MULTIPLE) * CACHE_MULTIPLE
    if rounded > shape.context_length:
        raise SlmkitError(f"--cache-length {requested} exceeds the model's context of {shape.context_length} tokens.",
                          hint=f"Use at most {shape.context_length // CACHE_MULTIPLE * CACHE_MULTIPLE}.")
    return rounded


def stateful_wrapper(model: torch.nn.Module, shape: DecoderShape, layout: StatefulLayout) -> torch.nn.Module:
    import torch
    from transformers.cache_utils import Cache

    class StateCache(Cache):
        """Writes new keys/values into the wrapper's fp16 buffers and returns the filled prefix."""

        def __init__(self, owner: torch.nn.Module, past_len: int, total: int) -> None:
            super().__init__(layers=[])
            self.owner, self.past_len, self.total = owner, past_len, total

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            keys, values = self.owner.key_cache, self.owner.value_cache
            keys[layer_idx, :, :, self.past_len:self.total, :] = key_states.to(keys.dtype)
            values[layer_idx, :, :, self.past_len:self.total, :] = value_states.to(values.dtype)
            dtype = key_states.dtype
            return (keys[layer_idx, :, :, :self.total, :].to(dtype), values[layer_idx, :, :, :self.total, :].to(dtype))

        def get_seq_length(self, layer_idx: int = 0) -> int:
            return self.past_len

    class StatefulDecoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer(KEY_CACHE, torch.zeros(layout.state_shape, dtype=torch.float16))
            self.register_buffer(VALUE_CACHE, torch.zeros(layout.state_shape, dtype=torch.float16))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            new, total = input_ids.shape[1], attention_mask.shape[1]
            past_len = total - new
            masks = attention_masks(self.model, shape, past_len, new, attention_mask, MASKED)
            positions = torch.arange(past_len, total).view(1, new)
            out = self.model(input_ids=input_ids, attention_mask=masks, position_ids=positions,
                             cache=StateCache(self, past_len, total), use_cache=True)
            return out.logits

    return StatefulDecoder().eval()


def convert_stateful(model: torch.nn.Module, shape: DecoderShape, layout: StatefulLayout, fp16: bool,
                     deployment_target: str):
    """Trace the wrapper and convert it to an in-memory `ct.models.MLModel` (not compiled here)."""
    import torch
    from transformers.utils import logging as hf_logging

    wrapper = stateful_wrapper(model, shape, layout)
    example_new, example_past = 3, 2
    ids = torch.zeros((1, example_new), dtype=torch.int32)
    mask = torch.ones((1, example_past + example_new), dtype=torch.int32)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # tracing reads every attribute; `loss_function` warns when read
    try:
        with torch.no_grad(), quiet_coremltools():
            traced = torch.jit.trace(wrapper, (ids, mask), check_trace=False)
    finally:
        hf_logging.set_verbosity(previous)
    return traced_to_coreml(traced, layout, fp16, type(model).__name__, deployment_target)


def traced_to_coreml(traced: torch.jit.ScriptModule, layout: StatefulLayout, fp16: bool, model_name: str,
                     deployment_target: str = "iOS18"):
    """Convert a traced (input_ids, attention_mask) -> logits module with the two cache states."""
    import coremltools as ct
    import numpy as np

    length = ct.RangeDim(lower_bound=1, upper_bound=layout.cache_length, default=1)
    state = ct.TensorType(shape=layout.state_shape, dtype=np.float16)
    try:
        with quiet_coremltools():
            return ct.convert(
                traced,
                inputs=[ct.TensorType(INPUT_IDS, shape=(1, length), dtype=np.int32),
                        ct.TensorType(ATTENTION_MASK, shape=(1, length), dtype=np.int32)],
                outputs=[ct.TensorType(LOGITS, dtype=np.float16 if fp16 else np.float32)],
                states=[ct.StateType(wrapped_type=state, name=KEY_CACHE),
                        ct.StateType(wrapped_type=state, name=VALUE_CACHE)],
                minimum_deployment_target=getattr(ct.target, deployment_target),
                compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
                convert_to="mlprogram",
                skip_model_load=True,
            )
    except (NotImplementedError, RuntimeError, ValueError, TypeError, IndexError, AssertionError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SlmkitError(f"coremltools could not convert {model_name}: {first_line}",
                          hint="Nothing was written. Use --target gguf or --target onnx for this model, "
                               "and report the model and this message.") from exc
