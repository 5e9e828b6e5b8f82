"""Build the ONNX decoder directly from the checkpoint's weights, one layer at a time.

The graph has the interface onnxruntime-genai and hand-written ORT loops expect:
`input_ids` [batch, sequence] int64, `attention_mask` [batch, past + sequence] int64,
`position_ids` [batch, sequence] int64, `past_key_values.N.key/value` [batch, kv_heads, past,
head_dim] float32 -> `logits` [batch, sequence, vocab] float32, `present.N.key/value` (past + new).
Every op mirrors transformers' eager implementation of the family (converter/models/decoder.py
holds the facts): RMSNorm as `SimplifiedLayerNormalization` (float32 inside), RoPE computed in the
graph from `position_ids` exactly as transformers computes it (float32 position x inv_freq),
additive masks built from the 2D mask (Gemma 3's sliding layers see their window only),
eager attention with GQA by expanding K/V, SiLU / tanh-GELU gated MLP, tied or untied head.

Weights are read, quantized (converter/targets/onnx/quantize.py) and written to the external data
file one tensor at a time: peak memory is one layer's weights plus the token table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from slmkit.converter.targets.onnx.quantize import ACCURACY_LEVEL, PackedWeight, QuantPlan, WeightFormat, pack

if TYPE_CHECKING:
    from slmkit.converter.models.decoder import DecoderSpec, DecoderWeights, LayerWeights, Rope
    from slmkit.converter.targets.onnx.builder import GraphBuilder

PAST_NAME = "past_key_values.{layer}.{kind}"
PRESENT_NAME = "present.{layer}.{kind}"
# Rows of the token table quantized at a time (bounds the float32 copy of a 262K-row table).
TABLE_CHUNK_ROWS = 16384


def past_names(layers: int) -> list[str]:
    """The graph's KV-cache input names, layer by layer, key then value (genai's past_key_values.%d.key/value)."""
    return [PAST_NAME.format(layer=i, kind=k) for i in range(layers) for k in ("key", "value")]


@dataclass(frozen=True)
class PackedInputs:
    """Initializer names of a MatMulNBits weight, and its K (in) and N (out) sizes."""

    weight: str
    scales: str
    zero_points: str | None
    k: int
    n: int


@dataclass
class GraphReport:
    tied_embeddings: str
    details: dict[str, object] = field(default_factory=dict)


class DecoderGraph:
    """Emits the decoder into a GraphBuilder; `float_type` is float32 or float16 (fp16 weights and
    compute, float32 inputs, outputs and cache, as onnxruntime's fp16 converter with keep_io_types)."""

    def __init__(self, g: GraphBuilder, spec: DecoderSpec, weights: DecoderWeights, plan: QuantPlan,
                 on_weight: Callable[[int], None] = lambda n: None) -> None:
        from onnx import TensorProto

        self.g, self.spec, self.weights, self.plan = g, spec, weights, plan
        self.on_weight = on_weight
        self.fp16 = plan.quant == "fp16"
        self.np_float = np.float16 if self.fp16 else np.float32
        self.onnx_float = TensorProto.FLOAT16 if self.fp16 else TensorProto.FLOAT
        self.lookup: tuple = ()  # how the token lookup reads its table (set by _tables)
        self.report = GraphReport("untied" if not spec.tied else "shared")

    # -- whole graph -------------------------------------------------------------------------
    def build(self) -> GraphReport:
        """The decoder graph: inputs (input_ids, attention_mask, position_ids, past key/values
        [batch, kv_heads, past, head_dim]), outputs (logits [batch, sequence, vocab], present key/values),
        embedding, layers and head, weights streamed to external data as they are read. Returns a
        GraphReport (how the embedding table was tied, details for the manifest).
        """
        from onnx import TensorProto

        g, spec = self.g, self.spec
        ids = g.add_input("input_ids", TensorProto.INT64, ["batch", "sequence"])
        mask = g.add_input("attention_mask", TensorProto.INT64, ["batch", "total_sequence"])
        positions = g.add_input("position_ids", TensorProto.INT64, ["batch", "sequence"])
        for name in past_names(spec.layers):
            g.add_input(name, TensorProto.FLOAT, ["batch", spec.kv_heads, "past_sequence", spec.head_dim])
        g.add_output("logits", TensorProto.FLOAT, ["batch", "sequence", spec.vocab_size])
        for i in range(spec.layers):
            for kind in ("key", "value"):
                g.add_output(PRESENT_NAME.format(layer=i, kind=kind), TensorProto.FLOAT,
                             ["batch", spec.kv_heads, "total_sequence", spec.head_dim])
        head = self._tables()
        hidden = self._embed(ids)
        masks = self._masks(ids, mask)
        ropes = {layer_type: self._rope(positions, rope, layer_type) for layer_type, rope in spec.ropes.items()}
        for layer in range(spec.layers):
            layer_type = spec.layer_types[layer]
            hidden = self._layer(layer, hidden, self.weights.layer(layer), masks[layer_type], ropes[layer_type])
            self.on_weight(self.weights.layer_bytes(layer))
        hidden = self._norm(hidden, self.weights.final_norm(), "model.norm")
        self._head(hidden, head)
        self.report.details.update(self.plan.describe())
        return self.report

    # -- token table and output projection ---------------------------------------------------
    def _tables(self) -> tuple[str, object]:
        """Write the output projection first, so a tied table can be shared by the lookup.

        Returns how the head computes: ("gemm", table) for a float tied table, ("matmul", W^T)
        for a float untied head, ("nbits", packed inputs) when quantized. Sets `self.lookup`.
        """
        spec, plan = self.spec, self.plan
        table = "model.embed_tokens.weight"
        if not plan.head.quantized:
            self.lookup = ("float", self._float_table(table, table, self.np_float))
            if spec.tied:
                return ("gemm", self.lookup[1])
            return ("matmul", self._float_weight("lm_head.weight.T", self.weights.load("lm_head.weight").T))
        head_name = table if spec.tied else "lm_head.weight"
        head = self._packed_table(head_name, plan.head)
        divisible = spec.hidden % plan.block_size == 0
        if spec.tied and divisible:
            self.lookup = ("packed", head, plan.head.bits)
            self.report.details["embedding"] = "shares the output projection's weights"
        elif not spec.tied and divisible:
            bits = plan.untied_embedding_bits
            self.lookup = ("packed", self._packed_table(table, WeightFormat("rtn", bits, symmetric=True)), bits)
            self.report.details["embedding"] = f"{bits}-bit symmetric (GatherBlockQuantized)"
        else:
            self.lookup = ("float", self._float_table(table, table, np.float32))
            self.report.details["embedding"] = (f"float32 (width {spec.hidden} is not a multiple of block size "
                                                f"{plan.block_size})")
            if spec.tied:
                self.report.tied_embeddings = "stored twice (float32 lookup table + quantized projection)"
        return ("nbits", head)

    def _embed(self, ids: str) -> str:
        g, spec = self.g, self.spec
        kind, source, *bits = self.lookup
        if kind == "packed":
            hidden = self._gather_packed(source, ids, bits[0])
        else:
            hidden = g.op("Gather", [source, ids], name="/model/embed_tokens/Gather")
        if self.fp16 and kind == "packed":
            hidden = g.op("Cast", [hidden], name="/model/embed_tokens/Half", to=self.onnx_float)
        if spec.embed_scale is not None:
            hidden = g.op("Mul", [hidden, g.constant(spec.embed_scale, self.np_float)], name="/model/embed_scale")
        return hidden

    def _head(self, hidden: str, head: tuple[str, object]) -> None:
        g, spec = self.g, self.spec
        kind, source = head
        # The op that makes the logits writes the graph output itself (quantizers and tests look
        # for the MatMulNBits whose output is `logits`); soft-capping and fp16 add ops after it.
        direct = not (spec.final_logit_softcapping or self.fp16)
        out = ["logits"] if direct else 1
        if kind == "nbits":
            logits = self._matmul_nbits(hidden, source, self.plan.head, "/lm_head", out)
        elif kind == "gemm":  # float tied: Gemm(x, E, transB) on a 2D view, E stored once
            flat = g.op("Reshape", [hidden, g.constant([-1, spec.hidden])], name="/lm_head/Reshape2D")
            projected = g.op("Gemm", [flat, source], name="/lm_head/Gemm", transB=1)
            shape = g.op("Shape", [hidden], name="/lm_head/Shape", end=-1)
            out_shape = g.op("Concat", [shape, g.constant([-1])], name="/lm_head/OutShape", axis=0)
            logits = g.op("Reshape", [projected, out_shape], out, name="/lm_head/Reshape3D")
        else:
            logits = g.op("MatMul", [hidden, source], out, name="/lm_head/MatMul")
        if spec.final_logit_softcapping:
            cap = g.constant(spec.final_logit_softcapping, self.np_float)
            logits = g.op("Mul", [g.op("Tanh", [g.op("Div", [logits, cap], name="/lm_head/SoftcapDiv")],
                                       name="/lm_head/SoftcapTanh"), cap], 1 if self.fp16 else ["logits"],
                          name="/lm_head/Softcap")
        if self.fp16:
            g.op("Cast", [logits], ["logits"], name="/lm_head/Float", to=1)

    def _float_table(self, tensor: str, name: str, dtype: type) -> str:
        """A float [vocab, hidden] table, converted in row chunks (it is the largest tensor)."""
        shape = self.weights.shape(tensor)
        chunks = (chunk.astype(dtype) for chunk in self.weights.rows(tensor, TABLE_CHUNK_ROWS))
        name = self.g.initializer_chunks(name, shape, np.dtype(dtype), chunks)
        self.on_weight(self.weights.bytes_of(tensor))
        return name

    def _packed_table(self, tensor: str, fmt: WeightFormat) -> PackedInputs:
        """Quantize a [vocab, hidden] table in row chunks; returns MatMulNBits' weight inputs."""
        chunks = [pack(rows, fmt, self.plan.block_size) for rows in self.weights.rows(tensor, TABLE_CHUNK_ROWS)]
        self.on_weight(self.weights.bytes_of(tensor))
        merged = PackedWeight(np.concatenate([c.packed for c in chunks]), np.concatenate([c.scales for c in chunks]),
                              None if chunks[0].zero_points is None else np.concatenate([c.zero_points for c in chunks]),
                              chunks[0].k, sum(c.n for c in chunks), fmt.bits, self.plan.block_size)
        return self._packed_initializers(tensor, merged)

    def _packed_initializers(self, name: str, packed: PackedWeight) -> PackedInputs:
        g = self.g
        zero_points = None
        if packed.zero_points is not None:
            zero_points = g.initializer(f"{name}_zero_points", packed.zero_points)
        return PackedInputs(g.initializer(f"{name}_Q{packed.bits}", packed.packed),
                            g.initializer(f"{name}_scales", packed.scales), zero_points, packed.k, packed.n)

    def _gather_packed(self, packed: PackedInputs, ids: str, bits: int) -> str:
        """GatherBlockQuantized over a [rows, blocks, bytes] MatMulNBits-packed table.

        The table is gathered in its 3D form (quantized along the last axis) and rows flattened
        after: reshaping the table itself would be constant-folded into a second copy (seen in the
        .ort file). Uint8 data uses MatMulNBits' default zero point (symmetric packing).
        """
        g = self.g
        blocks = self.spec.hidden // self.plan.block_size
        scales_3d = g.op("Reshape", [packed.scales, g.constant([-1, blocks, 1])],
                         name="/model/embed_tokens/ReshapeScales")
        gathered = g.op("GatherBlockQuantized", [packed.weight, ids, scales_3d],
                        name="/model/embed_tokens/GatherBlockQuantized", domain="com.microsoft", gather_axis=0,
                        quantize_axis=2, block_size=self.plan.block_size, bits=bits)
        return g.op("Reshape", [gathered, g.constant([0, 0, -1])], name="/model/embed_tokens/FlattenRows")

    # -- masks and RoPE ----------------------------------------------------------------------
    def _masks(self, ids: str, mask: str) -> dict[str, str]:
        """Additive [batch, 1, new, past + new] masks per layer type (0 where visible)."""
        from onnx import TensorProto

        g, spec = self.g, self.spec
        total = g.op("Gather", [g.op("Shape", [mask], name="/masks/MaskShape"), g.constant(1)], name="/masks/Total")
        new = g.op("Gather", [g.op("Shape", [ids], name="/masks/IdsShape"), g.constant(1)], name="/masks/New")
        past = g.op("Sub", [total, new], name="/masks/Past")
        kv_slot = g.op("Range", [g.constant(0), total, g.constant(1)], name="/masks/KvSlot")
        q_slot = g.op("Unsqueeze", [g.op("Range", [past, total, g.constant(1)], name="/masks/QSlot"),
                                    g.constant([1])], name="/masks/QSlotColumn")
        causal = g.op("LessOrEqual", [kv_slot, q_slot], name="/masks/Causal")  # [new, total]
        not_padding = g.op("Unsqueeze", [g.op("Cast", [mask], name="/masks/MaskBool", to=TensorProto.BOOL),
                                         g.constant([1, 2])], name="/masks/NotPadding")  # [batch, 1, 1, total]
        lowest = g.constant(np.finfo(self.np_float).min, self.np_float)
        zero = g.constant(0.0, self.np_float)

        def additive(allowed: str, tag: str) -> str:
            visible = g.op("And", [allowed, not_padding], name=f"/masks/{tag}/Visible")
            return g.op("Where", [visible, zero, lowest], name=f"/masks/{tag}/Additive")

        masks = {"full_attention": additive(causal, "full")}
        if spec.sliding_window:
            distance = g.op("Sub", [q_slot, kv_slot], name="/masks/Distance")
            inside = g.op("Less", [distance, g.constant(spec.sliding_window)], name="/masks/InsideWindow")
            masks["sliding_attention"] = additive(g.op("And", [causal, inside], name="/masks/SlidingCausal"), "sliding")
        return masks

    def _rope(self, positions: str, rope: Rope, layer_type: str) -> tuple[str, str, int]:
        """cos, sin [batch, 1, new, rotary_dim] and rotary_dim: transformers' float32
        position x inv_freq, computed in the graph."""
        from onnx import TensorProto

        g = self.g
        tag = f"/rope/{layer_type}"
        inv_freq = g.initializer(f"{tag}/inv_freq", rope.inv_freq.astype(np.float32))
        if rope.long_inv_freq is not None:
            long_freq = g.initializer(f"{tag}/long_inv_freq", rope.long_inv_freq.astype(np.float32))
            reach = g.op("Add", [g.op("ReduceMax", [positions], name=f"{tag}/MaxPosition", keepdims=0),
                                 g.constant(1)], name=f"{tag}/Reach")
            is_long = g.op("Greater", [reach, g.constant(rope.original_max)], name=f"{tag}/IsLong")
            inv_freq = g.op("Where", [is_long, long_freq, inv_freq], name=f"{tag}/InvFreq")
        pos = g.op("Unsqueeze", [g.op("Cast", [positions], name=f"{tag}/PositionsFloat", to=TensorProto.FLOAT),
                                 g.constant([-1])], name=f"{tag}/PositionsColumn")
        freqs = g.op("Mul", [pos, inv_freq], name=f"{tag}/Freqs")
        emb = g.op("Concat", [freqs, freqs], name=f"{tag}/Emb", axis=-1)
        cos, sin = g.op("Cos", [emb], name=f"{tag}/Cos"), g.op("Sin", [emb], name=f"{tag}/Sin")
        if rope.attention_scaling != 1.0:
            scale = g.constant(rope.attention_scaling, np.float32)
            cos = g.op("Mul", [cos, scale], name=f"{tag}/CosScaled")
            sin = g.op("Mul", [sin, scale], name=f"{tag}/SinScaled")
        if self.fp16:
            cos = g.op("Cast", [cos], name=f"{tag}/CosHalf", to=self.onnx_float)
            sin = g.op("Cast", [sin], name=f"{tag}/SinHalf", to=self.onnx_float)
        heads_axis = g.constant([1])
        return (g.op("Unsqueeze", [cos, heads_axis], name=f"{tag}/CosHeads"),
                g.op("Unsqueeze", [sin, heads_axis], name=f"{tag}/SinHeads"), rope.rotary_dim)

    # -- one layer ---------------------------------------------------------------------------
    def _layer(self, i: int, hidden: str, w: LayerWeights, mask: str, rope: tuple[str, str, int]) -> str:
        g, spec = self.g, self.spec
        p = f"model.layers.{i}"
        x = self._norm(hidden, w["attn_norm"], f"{p}.input_layernorm")
        q = self._linear(x, w["q"], w.get("q_bias"), f"{p}.self_attn.q_proj", "q")
        k = self._linear(x, w["k"], w.get("k_bias"), f"{p}.self_attn.k_proj", "k")
        v = self._linear(x, w["v"], w.get("v_bias"), f"{p}.self_attn.v_proj", "v")
        q = self._heads(q, spec.heads, f"{p}/q")
        k = self._heads(k, spec.kv_heads, f"{p}/k")
        v = self._heads(v, spec.kv_heads, f"{p}/v")
        if spec.qk_norm:
            q = self._norm(q, w["q_norm"], f"{p}.self_attn.q_norm")
            k = self._norm(k, w["k_norm"], f"{p}.self_attn.k_norm")
        q = self._rotate(q, rope, f"{p}/q")
        k = self._rotate(k, rope, f"{p}/k")
        present_k = self._present(k, i, "key")
        present_v = self._present(v, i, "value")
        context = self._attention(q, present_k, present_v, mask, p)
        out = self._linear(context, w["o"], None, f"{p}.self_attn.o_proj", "o")
        if "attn_out_norm" in w.tensors:
            out = self._norm(out, w["attn_out_norm"], f"{p}.post_attention_layernorm")
        hidden = g.op("Add", [hidden, out], name=f"/{p}/attn_residual")
        x = self._norm(hidden, w["mlp_norm"], f"{p}.mlp_norm")
        gate = self._linear(x, w["gate"], None, f"{p}.mlp.gate_proj", "gate")
        up = self._linear(x, w["up"], None, f"{p}.mlp.up_proj", "up")
        if spec.activation == "silu":
            activated = g.op("Mul", [gate, g.op("Sigmoid", [gate], name=f"/{p}/mlp/Sigmoid")], name=f"/{p}/mlp/SiLU")
        else:
            activated = g.op("Gelu", [gate], name=f"/{p}/mlp/Gelu", approximate="tanh")
        out = self._linear(g.op("Mul", [activated, up], name=f"/{p}/mlp/Gated"), w["down"], None,
                           f"{p}.mlp.down_proj", "down")
        if "mlp_out_norm" in w.tensors:
            out = self._norm(out, w["mlp_out_norm"], f"{p}.post_feedforward_layernorm")
        return g.op("Add", [hidden, out], name=f"/{p}/mlp_residual")

    def _norm(self, x: str, weight: np.ndarray, name: str) -> str:
        """RMSNorm over the last axis (float32 inside); Gemma's stored w - 1 gets its 1 back here."""
        scale = (weight.astype(np.float32) + np.float32(self.spec.norm_shift)).astype(self.np_float)
        w = self.g.initializer(f"{name}.weight", scale)
        return self.g.op("SimplifiedLayerNormalization", [x, w], name=f"/{name}/RMSNorm", axis=-1,
                         epsilon=self.spec.rms_eps, stash_type=1)

    def _heads(self, x: str, heads: int, tag: str) -> str:
        """[batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]."""
        g = self.g
        split = g.op("Reshape", [x, g.constant([0, 0, heads, self.spec.head_dim])], name=f"/{tag}/SplitHeads")
        return g.op("Transpose", [split], name=f"/{tag}/Transpose", perm=[0, 2, 1, 3])

    def _rotate(self, x: str, rope: tuple[str, str, int], tag: str) -> str:
        """x * cos + rotate_half(x) * sin on the first rotary_dim channels; the rest pass through."""
        g, spec = self.g, self.spec
        cos, sin, rotary = rope
        half = rotary // 2
        x_rot = x if rotary == spec.head_dim else g.op("Slice", [x, g.constant([0]), g.constant([rotary]),
                                                               g.constant([-1])], name=f"/{tag}/RotarySlice")
        first = g.op("Slice", [x_rot, g.constant([0]), g.constant([half]), g.constant([-1])], name=f"/{tag}/FirstHalf")
        second = g.op("Slice", [x_rot, g.constant([half]), g.constant([rotary]), g.constant([-1])],
                      name=f"/{tag}/SecondHalf")
        rotated = g.op("Concat", [g.op("Neg", [second], name=f"/{tag}/Neg"), first], name=f"/{tag}/RotateHalf", axis=-1)
        out = g.op("Add", [g.op("Mul", [x_rot, cos], name=f"/{tag}/MulCos"),
                           g.op("Mul", [rotated, sin], name=f"/{tag}/MulSin")], name=f"/{tag}/Rotated")
        if rotary == spec.head_dim:
            return out
        passed = g.op("Slice", [x, g.constant([rotary]), g.constant([spec.head_dim]), g.constant([-1])],
                      name=f"/{tag}/PassSlice")
        return g.op("Concat", [out, passed], name=f"/{tag}/WithPass", axis=-1)

    def _present(self, new: str, layer: int, kind: str) -> str:
        g = self.g
        past = PAST_NAME.format(layer=layer, kind=kind)
        if self.fp16:
            past = g.op("Cast", [past], name=f"/model.layers.{layer}/past_{kind}_half", to=self.onnx_float)
            joined = g.op("Concat", [past, new], name=f"/model.layers.{layer}/present_{kind}", axis=2)
            g.op("Cast", [joined], [PRESENT_NAME.format(layer=layer, kind=kind)], to=1)
            return joined
        return g.op("Concat", [past, new], [PRESENT_NAME.format(layer=layer, kind=kind)],
                    name=f"/model.layers.{layer}/present_{kind}", axis=2)

    def _attention(self, q: str, k: str, v: str, mask: str, p: str) -> str:
        """softmax(q k^T * scale + mask) v with K/V expanded to every query head (transformers' repeat_kv)."""
        g, spec = self.g, self.spec
        groups = spec.heads // spec.kv_heads
        if groups > 1:
            k, v = self._repeat_kv(k, groups, f"{p}/k"), self._repeat_kv(v, groups, f"{p}/v")
        scores = g.op("MatMul", [q, g.op("Transpose", [k], name=f"/{p}/attn/KeysT", perm=[0, 1, 3, 2])],
                      name=f"/{p}/attn/QK")
        scores = g.op("Mul", [scores, g.constant(spec.attention_scale, self.np_float)], name=f"/{p}/attn/Scale")
        scores = g.op("Add", [scores, mask], name=f"/{p}/attn/Mask")
        probs = g.op("Softmax", [scores], name=f"/{p}/attn/Softmax", axis=-1)
        context = g.op("MatMul", [probs, v], name=f"/{p}/attn/Context")
        context = g.op("Transpose", [context], name=f"/{p}/attn/ContextT", perm=[0, 2, 1, 3])
        return g.op("Reshape", [context, g.constant([0, 0, spec.q_size])], name=f"/{p}/attn/MergeHeads")

    def _repeat_kv(self, x: str, groups: int, tag: str) -> str:
        """[b, kv, t, d] -> [b, kv * groups, t, d], each KV head repeated for its query group."""
        g, spec = self.g, self.spec
        expanded = g.op("Expand", [g.op("Unsqueeze", [x, g.constant([2])], name=f"/{tag}/Unsqueeze"),
                                   g.constant([1, 1, groups, 1, 1])], name=f"/{tag}/Expand")
        return g.op("Reshape", [expanded, g.constant([0, spec.heads, -1, spec.head_dim])], name=f"/{tag}/RepeatKV")

    # -- projections -------------------------------------------------------------------------
    def _linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str, role: str) -> str:
        fmt = self.plan.projection(role)
        if fmt.quantized:
            packed = self._packed_initializers(f"{name}.weight", pack(weight, fmt, self.plan.block_size))
            out = self._matmul_nbits(x, packed, fmt, f"/{name}")
        else:
            out = self.g.op("MatMul", [x, self._float_weight(f"{name}.weight.T", weight.T)], name=f"/{name}/MatMul")
        if bias is not None:
            out = self.g.op("Add", [out, self.g.initializer(f"{name}.bias", bias.astype(self.np_float))],
                            name=f"/{name}/Add")
        return out

    def _float_weight(self, name: str, weight_t: np.ndarray) -> str:
        return self.g.initializer(name, np.ascontiguousarray(weight_t, dtype=self.np_float))

    def _matmul_nbits(self, x: str, packed: PackedInputs, fmt: WeightFormat, name: str,
                      outputs: int | list[str] = 1) -> str:
        inputs = [x, packed.weight, packed.scales] + ([packed.zero_points] if packed.zero_points else [])
        return self.g.op("MatMulNBits", inputs, outputs, name=f"{name}/MatMulNBits", domain="com.microsoft", K=packed.k,
                         N=packed.n, bits=fmt.bits, block_size=self.plan.block_size, accuracy_level=ACCURACY_LEVEL)
