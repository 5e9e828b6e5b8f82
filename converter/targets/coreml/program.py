"""Build the stateful Core ML program directly from the checkpoint's weights, one layer at a time.

One MIL program serves prefill and decode: `input_ids` [1, n] and `attention_mask` [1, past + n]
(ones; its length tells the program where the new tokens go) -> `logits` [1, n, vocab]. The KV
cache lives in two fp16 states, `key_cache` / `value_cache` [layers, 1, kv_heads, cache_length,
head_dim], written in place (slice_update), as in Apple's stateful Llama sample. The two input
lengths are independent dimensions: a decode step feeds [1, 1] ids with a [1, past + 1] mask.

Each weight is read, rounded to the compute precision, compressed (converter/targets/coreml/
quantize.py) and added as a constant before the next is read, so the program holds the model
once, in its compressed form. Ops mirror transformers' eager implementation of the family
(converter/models/decoder.py), with the fp16 rewrites of converter/targets/coreml/fp16_safe.py:
scale-safe RMSNorm, the residual stream divided by a calibrated power of two, and RoPE cos/sin
as tables computed in float32 and looked up by position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slmkit.converter.targets.coreml.quantize import WeightCompressor

if TYPE_CHECKING:
    from slmkit.converter.models.decoder import DecoderSpec, DecoderWeights, LayerWeights, Rope

INPUT_IDS, ATTENTION_MASK, LOGITS = "input_ids", "attention_mask", "logits"
KEY_CACHE, VALUE_CACHE = "key_cache", "value_cache"
TABLE_BLOCK_ROWS = 16384  # a multiple of every row group a compression uses (palettes: 16)
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
        """The program's interface for the manifest: inputs, outputs and state shapes, cache length."""
        return {
            "inputs": {INPUT_IDS: "int32 [1, n], 1 <= n <= cache_length: the new tokens",
                       ATTENTION_MASK: "int32 [1, past + n]: ones; its length places the new tokens in the cache"},
            "outputs": {LOGITS: f"float [1, n, {self.vocab_size}]"},
            "states": {name: f"fp16 {list(self.state_shape)} (layers, batch, kv_heads, position, head_dim)"
                       for name in (KEY_CACHE, VALUE_CACHE)},
            "cache_length": self.cache_length,
        }


class DecoderProgram:
    """Emits the decoder as MIL ops; call `build()` once. `stream_scale` is k (fp16_safe.py)."""

    def __init__(self, spec: DecoderSpec, weights: DecoderWeights, layout: StatefulLayout,
                 compressor: WeightCompressor, fp16: bool, stream_scale: int,
                 on_weight: Callable[[int], None] = lambda n: None) -> None:
        self.spec, self.weights, self.layout = spec, weights, layout
        self.compressor, self.fp16, self.on_weight = compressor, fp16, on_weight
        self.inverse = 1.0 / stream_scale
        self.np_float = np.float16 if fp16 else np.float32
        self.dtype = "fp16" if fp16 else "fp32"

    def build(self) -> Any:
        """The `coremltools` Program (function `main`)."""
        from coremltools.converters.mil import Builder as mb
        from coremltools.converters.mil.mil import Function, Program, get_new_symbol, types

        import coremltools as ct

        placeholders = {
            INPUT_IDS: mb.placeholder(shape=(1, get_new_symbol()), dtype=types.int32),
            ATTENTION_MASK: mb.placeholder(shape=(1, get_new_symbol()), dtype=types.int32),
            KEY_CACHE: mb.state_tensor_placeholder(shape=self.layout.state_shape, dtype=types.fp16),
            VALUE_CACHE: mb.state_tensor_placeholder(shape=self.layout.state_shape, dtype=types.fp16),
        }
        program = Program()
        with Function(placeholders, opset_version=ct.target.iOS18) as function:
            logits = self._decoder(function.inputs)
            function.set_outputs([logits])
            program.add_function("main", function)
        return program

    # -- whole decoder -----------------------------------------------------------------------
    def _decoder(self, inputs: dict[str, Any]) -> Any:
        from coremltools.converters.mil import Builder as mb

        spec = self.spec
        ids, mask = inputs[INPUT_IDS], inputs[ATTENTION_MASK]
        new = mb.slice_by_index(x=mb.shape(x=ids), begin=[1], end=[2], squeeze_mask=[True], name="new_tokens")
        total = mb.slice_by_index(x=mb.shape(x=mask), begin=[1], end=[2], squeeze_mask=[True], name="total_tokens")
        past = mb.sub(x=total, y=new, name="past_tokens")
        positions = mb.range_1d(start=past, end=total, step=1, name="positions")
        table = self._table()
        hidden = mb.gather(x=table, indices=ids, axis=0, name="embed_tokens")
        if spec.embed_scale is not None:
            hidden = mb.mul(x=hidden, y=self.np_float(spec.embed_scale), name="embed_scale")
        if self.inverse != 1.0:
            hidden = mb.mul(x=hidden, y=self.np_float(self.inverse), name="embed_stream_scale")
        # One read per state; every write chains through SSA values (the form coremltools' passes
        # expect: read_state ops are not ordered against writes and may be merged).
        self.cache = {name: mb.read_state(input=inputs[name], name=f"{name}_read") for name in (KEY_CACHE, VALUE_CACHE)}
        masks = self._masks(mask, positions, total)
        ropes = {layer_type: self._rope(rope, positions, total, layer_type) for layer_type, rope in spec.ropes.items()}
        for layer in range(spec.layers):
            layer_type = spec.layer_types[layer]
            hidden = self._layer(layer, hidden, self.weights.layer(layer), masks[layer_type], ropes[layer_type],
                                 inputs, past, total)
            self.on_weight(self.weights.layer_bytes(layer))
        hidden = self._norm(hidden, self.weights.final_norm(), "model_norm", stream=self.inverse)
        head = table if spec.tied else self._weight(self.weights.load("lm_head.weight"), "lm_head_weight", "head")
        logits = mb.linear(x=hidden, weight=head, name="lm_head")
        if spec.final_logit_softcapping:
            cap = self.np_float(spec.final_logit_softcapping)
            logits = mb.mul(x=mb.tanh(x=mb.real_div(x=logits, y=cap)), y=cap, name="softcap")
        return mb.identity(x=logits, name=LOGITS)

    def _table(self) -> Any:
        """The token table (also the tied output projection: one constant, compressed once), read
        and compressed in row blocks (a 262K-row table is 2.7 GB in float32 at Gemma 3 4B)."""
        tensor = "model.embed_tokens.weight"
        blocks = (rows.astype(self.np_float) for rows in self.weights.rows(tensor, TABLE_BLOCK_ROWS))
        var = self.compressor.constant(blocks, "model_embed_tokens_weight", "table")
        self.on_weight(self.weights.bytes_of(tensor))
        return var

    # -- masks and RoPE ----------------------------------------------------------------------
    def _masks(self, mask: Any, positions: Any, total: Any) -> dict[str, Any]:
        """Additive [1, 1, n, past + n] masks per layer type: 0 where visible, MASKED elsewhere."""
        from coremltools.converters.mil import Builder as mb

        kv_slot = mb.reshape(x=mb.range_1d(start=0, end=total, step=1), shape=[1, -1], name="kv_slot")
        q_slot = mb.reshape(x=positions, shape=[-1, 1], name="q_slot")
        causal = mb.less_equal(x=kv_slot, y=q_slot, name="causal")
        not_padding = mb.reshape(x=mb.cast(x=mask, dtype="bool"), shape=[1, 1, 1, -1], name="not_padding")

        def additive(allowed: Any, tag: str) -> Any:
            visible = mb.logical_and(x=mb.expand_dims(x=allowed, axes=[0, 1]), y=not_padding, name=f"{tag}_visible")
            return mb.select(cond=visible, a=self.np_float(0.0), b=self.np_float(MASKED), name=f"{tag}_mask")

        masks = {"full_attention": additive(causal, "full")}
        if self.spec.sliding_window:
            distance = mb.sub(x=q_slot, y=kv_slot, name="distance")
            inside = mb.less(x=distance, y=np.int32(self.spec.sliding_window), name="inside_window")
            masks["sliding_attention"] = additive(mb.logical_and(x=causal, y=inside, name="sliding_causal"), "sliding")
        return masks

    def _rope(self, rope: Rope, positions: Any, total: Any, layer_type: str) -> tuple[Any, Any, int]:
        """cos, sin [1, 1, n, rotary_dim] looked up by position from float32-computed tables."""
        from coremltools.converters.mil import Builder as mb

        length = self.layout.cache_length
        cos, sin = rope.tables(length)
        cos_t = mb.const(val=cos.astype(self.np_float), name=f"rope_table_cos_{layer_type}")
        sin_t = mb.const(val=sin.astype(self.np_float), name=f"rope_table_sin_{layer_type}")
        cos_g = mb.gather(x=cos_t, indices=positions, axis=0)
        sin_g = mb.gather(x=sin_t, indices=positions, axis=0)
        if rope.long_inv_freq is not None and length > (rope.original_max or length):
            # longrope: a pass reaching past the original context uses the long factors throughout.
            long_cos, long_sin = rope.tables(length, long_factors=True)
            is_long = mb.greater(x=total, y=np.int32(rope.original_max), name=f"rope_is_long_{layer_type}")
            cos_g = mb.select(cond=is_long, a=mb.gather(x=mb.const(val=long_cos.astype(self.np_float),
                                                                   name=f"rope_table_long_cos_{layer_type}"),
                                                        indices=positions, axis=0), b=cos_g)
            sin_g = mb.select(cond=is_long, a=mb.gather(x=mb.const(val=long_sin.astype(self.np_float),
                                                                   name=f"rope_table_long_sin_{layer_type}"),
                                                        indices=positions, axis=0), b=sin_g)
        shape = [1, 1, -1, rope.rotary_dim]
        return (mb.reshape(x=cos_g, shape=shape, name=f"rope_cos_{layer_type}"),
                mb.reshape(x=sin_g, shape=shape, name=f"rope_sin_{layer_type}"), rope.rotary_dim)

    # -- one layer ---------------------------------------------------------------------------
    def _layer(self, i: int, hidden: Any, w: LayerWeights, mask: Any, rope: tuple[Any, Any, int],
               inputs: dict[str, Any], past: Any, total: Any) -> Any:
        from coremltools.converters.mil import Builder as mb

        spec, p = self.spec, f"layers_{i}"
        out_norms = "attn_out_norm" in w.tensors
        x = self._norm(hidden, w["attn_norm"], f"{p}_input_layernorm", stream=self.inverse)
        q = self._linear(x, w["q"], w.get("q_bias"), f"{p}_self_attn_q_proj", "q")
        k = self._linear(x, w["k"], w.get("k_bias"), f"{p}_self_attn_k_proj", "k")
        v = self._linear(x, w["v"], w.get("v_bias"), f"{p}_self_attn_v_proj", "v")
        q, k, v = (self._heads(t, n, f"{p}_{tag}") for t, n, tag in
                   ((q, spec.heads, "q"), (k, spec.kv_heads, "k"), (v, spec.kv_heads, "v")))
        if spec.qk_norm:
            q = self._norm(q, w["q_norm"], f"{p}_self_attn_q_norm")
            k = self._norm(k, w["k_norm"], f"{p}_self_attn_k_norm")
        q = self._rotate(q, rope, f"{p}_q")
        k = self._rotate(k, rope, f"{p}_k")
        keys = self._cache(inputs, KEY_CACHE, k, i, past, total, f"{p}_key")
        values = self._cache(inputs, VALUE_CACHE, v, i, past, total, f"{p}_value")
        context = self._attention(q, keys, values, mask, p)
        out = self._linear(context, w["o"], None, f"{p}_self_attn_o_proj", "o",
                           scale=1.0 if out_norms else self.inverse)
        if out_norms:
            out = self._norm(out, w["attn_out_norm"], f"{p}_post_attention_layernorm", out=self.inverse)
        hidden = mb.add(x=hidden, y=out, name=f"{p}_attn_residual")
        x = self._norm(hidden, w["mlp_norm"], f"{p}_mlp_norm", stream=self.inverse)
        gate = self._linear(x, w["gate"], None, f"{p}_mlp_gate_proj", "gate")
        up = self._linear(x, w["up"], None, f"{p}_mlp_up_proj", "up")
        if spec.activation == "silu":
            activated = mb.silu(x=gate, name=f"{p}_mlp_act")
        else:
            activated = mb.gelu(x=gate, mode="TANH_APPROXIMATION", name=f"{p}_mlp_act")
        out = self._linear(mb.mul(x=activated, y=up, name=f"{p}_mlp_gated"), w["down"], None, f"{p}_mlp_down_proj",
                           "down", scale=1.0 if out_norms else self.inverse)
        if out_norms:
            out = self._norm(out, w["mlp_out_norm"], f"{p}_post_feedforward_layernorm", out=self.inverse)
        return mb.add(x=hidden, y=out, name=f"{p}_mlp_residual")

    def _norm(self, x: Any, weight: np.ndarray, name: str, stream: float = 1.0, out: float = 1.0) -> Any:
        """Scale-safe RMSNorm (fp16_safe.py): (x/s) * rsqrt(mean((x/s)^2) + eps*stream^2/s^2) * w',
        s = max|x| clamped at `stream`; w' = (w + shift) * out. Equal to RMSNorm in real arithmetic."""
        from coremltools.converters.mil import Builder as mb

        spec = self.spec
        f = self.np_float
        s = mb.maximum(x=mb.reduce_max(x=mb.abs(x=x), axes=[-1], keep_dims=True), y=f(stream), name=f"{name}_s")
        scaled = mb.real_div(x=x, y=s, name=f"{name}_scaled")
        mean = mb.reduce_mean(x=mb.mul(x=scaled, y=scaled), axes=[-1], keep_dims=True, name=f"{name}_mean")
        eps = mb.real_div(x=mb.real_div(x=f(spec.rms_eps * stream * stream), y=s), y=s, name=f"{name}_eps")
        normed = mb.mul(x=scaled, y=mb.rsqrt(x=mb.add(x=mean, y=eps), epsilon=f(0.0)), name=f"{name}_normed")
        gain = ((weight.astype(np.float32) + np.float32(spec.norm_shift)) * np.float32(out)).astype(self.np_float)
        return mb.mul(x=normed, y=mb.const(val=gain, name=f"{name}_weight"), name=name)

    def _heads(self, x: Any, heads: int, tag: str) -> Any:
        """[1, n, heads * head_dim] -> [1, heads, n, head_dim]."""
        from coremltools.converters.mil import Builder as mb

        split = mb.reshape(x=x, shape=[1, -1, heads, self.spec.head_dim], name=f"{tag}_split")
        return mb.transpose(x=split, perm=[0, 2, 1, 3], name=f"{tag}_heads")

    def _rotate(self, x: Any, rope: tuple[Any, Any, int], tag: str) -> Any:
        """x * cos + rotate_half(x) * sin on the first rotary_dim channels; the rest pass through."""
        from coremltools.converters.mil import Builder as mb

        cos, sin, rotary = rope
        head_dim, half = self.spec.head_dim, rotary // 2

        def channels(start: int, end: int, name: str) -> Any:
            return mb.slice_by_index(x=x, begin=[0, 0, 0, start], end=[1, 0, 0, end],
                                     begin_mask=[True, True, True, False], end_mask=[True, True, True, False],
                                     name=f"{tag}_{name}")

        x_rot = x if rotary == head_dim else channels(0, rotary, "rotary")
        first, second = channels(0, half, "first_half"), channels(half, rotary, "second_half")
        rotated = mb.concat(values=[mb.mul(x=second, y=self.np_float(-1.0)), first], axis=-1, name=f"{tag}_rotate_half")
        out = mb.add(x=mb.mul(x=x_rot, y=cos), y=mb.mul(x=rotated, y=sin), name=f"{tag}_rotated")
        if rotary == head_dim:
            return out
        return mb.concat(values=[out, channels(rotary, head_dim, "pass")], axis=-1, name=f"{tag}_with_pass")

    def _cache(self, inputs: dict[str, Any], name: str, new: Any, layer: int, past: Any, total: Any, tag: str) -> Any:
        """Write the new keys/values at [layer, :, :, past:total, :] in place; return the filled
        prefix [1, kv_heads, total, head_dim] in the compute precision."""
        from coremltools.converters.mil import Builder as mb

        kv, d = self.spec.kv_heads, self.spec.head_dim
        update = mb.expand_dims(x=new if self.fp16 else mb.cast(x=new, dtype="fp16"), axes=[0], name=f"{tag}_update")
        past_1 = mb.reshape(x=past, shape=[1])
        total_1 = mb.reshape(x=total, shape=[1])
        begin = mb.concat(values=[np.array([layer, 0, 0], np.int32), past_1, np.array([0], np.int32)], axis=0)
        end = mb.concat(values=[np.array([layer + 1, 1, kv], np.int32), total_1, np.array([d], np.int32)], axis=0)
        written = mb.slice_update(x=self.cache[name], update=update, begin=begin, end=end, name=f"{tag}_write")
        self.cache[name] = mb.coreml_update_state(state=inputs[name], value=written, name=f"{tag}_store")
        start = np.array([layer, 0, 0, 0, 0], np.int32)
        prefix = mb.slice_by_index(x=self.cache[name], begin=start, end=end, begin_mask=[False, False, False, True, False],
                                   squeeze_mask=[True, False, False, False, False], name=f"{tag}_prefix")
        return prefix if self.fp16 else mb.cast(x=prefix, dtype="fp32", name=f"{tag}_float")

    def _attention(self, q: Any, keys: Any, values: Any, mask: Any, p: str) -> Any:
        """softmax(q * scale @ k^T + mask) @ v, K/V repeated per query group (transformers' repeat_kv)."""
        from coremltools.converters.mil import Builder as mb

        spec = self.spec
        groups = spec.heads // spec.kv_heads
        if groups > 1:
            keys, values = (mb.reshape(x=mb.tile(x=mb.expand_dims(x=t, axes=[2]), reps=[1, 1, groups, 1, 1]),
                                       shape=[1, spec.heads, -1, spec.head_dim], name=f"{p}_{tag}_repeat")
                            for t, tag in ((keys, "k"), (values, "v")))
        q = mb.mul(x=q, y=self.np_float(spec.attention_scale), name=f"{p}_q_scaled")
        scores = mb.add(x=mb.matmul(x=q, y=keys, transpose_y=True, name=f"{p}_scores"), y=mask, name=f"{p}_masked")
        probs = mb.softmax(x=scores, axis=-1, name=f"{p}_probs")
        context = mb.transpose(x=mb.matmul(x=probs, y=values, name=f"{p}_context"), perm=[0, 2, 1, 3])
        return mb.reshape(x=context, shape=[1, -1, spec.q_size], name=f"{p}_merge_heads")

    # -- weights -----------------------------------------------------------------------------
    def _linear(self, x: Any, weight: np.ndarray, bias: np.ndarray | None, name: str, role: str,
                scale: float = 1.0) -> Any:
        from coremltools.converters.mil import Builder as mb

        if scale != 1.0:  # a power of two: exact in every float format
            weight = weight * np.float32(scale)
            bias = None if bias is None else bias * np.float32(scale)
        w = self._weight(weight, f"{name}_weight", role)
        if bias is None:
            return mb.linear(x=x, weight=w, name=name)
        return mb.linear(x=x, weight=w, bias=mb.const(val=bias.astype(self.np_float), name=f"{name}_bias"), name=name)

    def _weight(self, weight: np.ndarray, name: str, role: str) -> Any:
        return self.compressor.constant(weight.astype(self.np_float), name, role)
