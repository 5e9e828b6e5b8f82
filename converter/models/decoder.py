"""The text decoder as graph builders see it: hyper-parameters, RoPE, and weights read one at a time.

The ONNX and Core ML targets build their graphs from this description instead of tracing a
PyTorch model, so converting needs memory for one layer's weights, not for the model. Every fact
comes from the checkpoint's config and the per-architecture table (`converter/architectures.py`);
RoPE frequencies come from transformers' own rotary module for the config, so the graphs rotate
exactly as the reference does.

Canonical per-layer weight roles (`LayerWeights`): attn_norm, q, k, v (each with an optional bias),
q_norm, k_norm, o, attn_out_norm, mlp_norm, gate, up, down, mlp_out_norm. Weights are float32
numpy arrays in PyTorch's Linear layout [out_features, in_features]. Fused checkpoints (Phi-3's
qkv_proj, gate_up_proj) are split into q/k/v and gate/up on read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from slmkit.converter.errors import SlmkitError

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint, TensorRef

# transformers' activation names -> the graph builders' activation.
ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}


@dataclass(frozen=True)
class Rope:
    """One layer type's rotary embedding: cos/sin(position * inv_freq) * attention_scaling.

    Phi-3's longrope switches to `long_inv_freq` for every position of a forward pass whose
    largest position + 1 exceeds `original_max` (transformers' `longrope_frequency_update`).
    """

    inv_freq: np.ndarray  # float32 [rotary_dim / 2]
    attention_scaling: float
    long_inv_freq: np.ndarray | None = None
    original_max: int | None = None

    @property
    def rotary_dim(self) -> int:
        return 2 * int(self.inv_freq.shape[0])

    def tables(self, length: int, long_factors: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin [length, rotary_dim] (float32) for positions 0..length-1, with the short (or,
        for longrope, the long) frequencies: transformers' formula and kernels, in float32."""
        import torch

        inv_freq = self.long_inv_freq if long_factors and self.long_inv_freq is not None else self.inv_freq
        freqs = torch.arange(length, dtype=torch.float32)[:, None] * torch.from_numpy(inv_freq.astype(np.float32))
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).numpy(), (emb.sin() * self.attention_scaling).numpy()


@dataclass(frozen=True)
class DecoderSpec:
    """Shapes and rules of one decoder (multimodal checkpoints: their text decoder)."""

    model_type: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int  # rows of the token table (may exceed the tokenizer's vocabulary)
    rms_eps: float
    norm_shift: float  # Gemma stores RMSNorm weights as w - 1
    embed_scale: float | None  # Gemma multiplies token embeddings by sqrt(hidden)
    attention_scale: float
    activation: str  # "silu" | "gelu_tanh"
    qk_norm: bool
    qkv_bias: bool
    tied: bool
    final_logit_softcapping: float | None
    layer_types: tuple[str, ...]  # "full_attention" | "sliding_attention" per layer
    sliding_window: int | None
    ropes: dict[str, Rope] = field(repr=False)
    context_length: int = 0

    def rope(self, layer: int) -> Rope:
        return self.ropes[self.layer_types[layer]]

    @property
    def q_size(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.kv_heads * self.head_dim


def decoder_spec(ckpt: Checkpoint) -> DecoderSpec:
    """The decoder's description; refuses what the graph builders do not implement."""
    config = _hf_text_config(ckpt)
    arch = ckpt.architecture
    activation = getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", None)
    if activation not in ACTIVATIONS:
        raise SlmkitError(f"Activation '{activation}' of {ckpt.model_type} is not supported by the graph builders.")
    if getattr(config, "attn_logit_softcapping", None):
        raise SlmkitError("Attention logit soft-capping (Gemma 2) is not supported by the graph builders yet.",
                          hint="Use --target gguf for this model.")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers)
    window = getattr(config, "sliding_window", None)
    if getattr(config, "layer_types", None) is None and window and window < config.max_position_embeddings:
        layer_types = ("sliding_attention",) * config.num_hidden_layers  # Phi-3 style: one window for all
    pre_attn_scalar = getattr(config, "query_pre_attn_scalar", None) if arch.qk_norm else None
    return DecoderSpec(
        model_type=ckpt.model_type,
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads or config.num_attention_heads,
        head_dim=head_dim,
        vocab_size=config.vocab_size,
        rms_eps=float(config.rms_norm_eps),
        norm_shift=arch.norm_shift,
        embed_scale=float(np.float32(config.hidden_size ** 0.5)) if arch.scaled_embeddings else None,
        attention_scale=float((pre_attn_scalar or head_dim) ** -0.5),
        activation=ACTIVATIONS[activation],
        qk_norm=arch.qk_norm,
        qkv_bias=any(ref.name.endswith("self_attn.q_proj.bias") for ref in ckpt.tensors()),
        tied=bool(getattr(config, "tie_word_embeddings", False)),
        final_logit_softcapping=getattr(config, "final_logit_softcapping", None),
        layer_types=layer_types,
        sliding_window=window if "sliding_attention" in layer_types else None,
        ropes=_ropes(config, set(layer_types)),
        context_length=ckpt.recipe.context_length if ckpt.recipe else config.max_position_embeddings,
    )


def _hf_text_config(ckpt: Checkpoint) -> Any:
    from transformers import AutoConfig

    text = dict(ckpt.text_config)
    return AutoConfig.for_model(text.pop("model_type"), **text)


def _ropes(config: Any, layer_types: set[str]) -> dict[str, Rope]:
    """inv_freq and scaling per layer type, from transformers' rotary module built for this config."""
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rotary_class = _rotary_class(config)
    rotary = rotary_class(config=config)
    ropes = {}
    for layer_type in sorted(layer_types):
        per_type = hasattr(rotary, f"{layer_type}_inv_freq")
        prefix = f"{layer_type}_" if per_type else ""
        inv_freq = getattr(rotary, f"{prefix}original_inv_freq", getattr(rotary, f"{prefix}inv_freq"))
        scaling = float(getattr(rotary, f"{prefix}attention_scaling"))
        params = config.rope_parameters[layer_type] if per_type else config.rope_parameters
        long_inv_freq, original_max = None, None
        if params.get("rope_type") == "longrope":
            original_max = int(params["original_max_position_embeddings"])
            long_inv_freq, _ = ROPE_INIT_FUNCTIONS["longrope"](config, None, seq_len=original_max + 1,
                                                                **({"layer_type": layer_type} if per_type else {}))
            long_inv_freq = long_inv_freq.to(torch.float32).numpy()
        elif params.get("rope_type") not in (None, "default", "linear", "llama3", "yarn"):
            raise SlmkitError(f"RoPE type '{params.get('rope_type')}' is not supported by the graph builders.",
                              hint="Use --target gguf for this model.")
        ropes[layer_type] = Rope(inv_freq.to(torch.float32).numpy(), scaling, long_inv_freq, original_max)
    return ropes


def _rotary_class(config: Any) -> type:
    """The model family's `*RotaryEmbedding` class (found on a meta-device model, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    for module in model.modules():
        if type(module).__name__.endswith("RotaryEmbedding"):
            return type(module)
    raise SlmkitError(f"{type(model).__name__} has no rotary embedding module slmkit knows.")


@dataclass
class LayerWeights:
    """One decoder layer's weights, float32, Linear layout [out, in]."""

    tensors: dict[str, np.ndarray]

    def __getitem__(self, role: str) -> np.ndarray:
        return self.tensors[role]

    def get(self, role: str) -> np.ndarray | None:
        return self.tensors.get(role)


class DecoderWeights:
    """Reads the decoder's weights tensor by tensor from the safetensors files (never all at once)."""

    def __init__(self, ckpt: Checkpoint, spec: DecoderSpec) -> None:
        self.ckpt, self.spec, self.arch = ckpt, spec, ckpt.architecture
        self.refs: dict[str, TensorRef] = {ref.name: ref for ref in ckpt.tensors()}

    @cached_property
    def parameters(self) -> int:
        return sum(math.prod(ref.shape) for ref in self.refs.values())

    @cached_property
    def nbytes(self) -> int:
        """Bytes of the decoder's weights as stored (what streaming them reads)."""
        return sum(ref.nbytes for ref in self.refs.values())

    def load(self, name: str) -> np.ndarray:
        """Tensor `name` as float32 numpy. Raises SlmkitError when the checkpoint lacks it or its data
        disagrees with its header's shape.
        """
        import torch

        ref = self.refs.get(name)
        if ref is None:
            raise SlmkitError(f"The checkpoint has no tensor '{name}' ({self.arch.model_type} layout expected).",
                              hint="The checkpoint does not match its config's architecture.")
        tensor = ref.load()
        if tuple(tensor.shape) != ref.shape:
            raise SlmkitError(f"Tensor '{ref.source_name}' has shape {tuple(tensor.shape)}, its header says {ref.shape}.")
        return tensor.to(torch.float32).numpy()

    def has(self, name: str) -> bool:
        return name in self.refs

    def shape(self, name: str) -> tuple[int, ...]:
        return self.refs[name].shape

    def bytes_of(self, name: str) -> int:
        return self.refs[name].nbytes

    def layer_bytes(self, index: int) -> int:
        prefix = f"model.layers.{index}."
        return sum(ref.nbytes for name, ref in self.refs.items() if name.startswith(prefix))

    def rows(self, name: str, chunk: int) -> Iterator[np.ndarray]:
        """A 2D tensor as float32 row blocks, converted one block at a time from its stored dtype
        (a 262K x 2560 table is 2.7 GB in float32, 1.3 GB in bf16)."""
        import torch

        ref = self.refs[name]
        tensor = ref.load()
        for start in range(0, tensor.shape[0], chunk):
            yield tensor[start:start + chunk].to(torch.float32).numpy()

    def embedding(self) -> np.ndarray:
        return self.load("model.embed_tokens.weight")

    def output_projection(self) -> np.ndarray:
        """[vocab, hidden]: the untied head, or the token table itself when tied."""
        return self.embedding() if self.spec.tied or not self.has("lm_head.weight") else self.load("lm_head.weight")

    def final_norm(self) -> np.ndarray:
        return self.load("model.norm.weight")

    def layer(self, index: int) -> LayerWeights:
        """Layer `index`'s weights by role (norms, q/k/v/o, gate/up/down, optional biases and q/k norms),
        float32, HF [out, in] layout; Phi-3's fused qkv_proj and gate_up_proj are split into their parts.
        """
        spec, arch = self.spec, self.arch
        prefix = f"model.layers.{index}."
        tensors: dict[str, np.ndarray] = {}
        for role, module in arch.layer_norms.items():
            tensors[role] = self.load(prefix + module + ".weight")
        attention, mlp = prefix + "self_attn.", prefix + "mlp."
        if arch.fused_projections:
            qkv = self.load(attention + "qkv_proj.weight")
            q_end, k_end = spec.q_size, spec.q_size + spec.kv_size
            tensors["q"], tensors["k"], tensors["v"] = qkv[:q_end], qkv[q_end:k_end], qkv[k_end:]
            gate_up = self.load(mlp + "gate_up_proj.weight")
            tensors["gate"], tensors["up"] = gate_up[:spec.intermediate], gate_up[spec.intermediate:]
        else:
            for role in ("q", "k", "v"):
                tensors[role] = self.load(f"{attention}{role}_proj.weight")
                if self.has(f"{attention}{role}_proj.bias"):
                    tensors[f"{role}_bias"] = self.load(f"{attention}{role}_proj.bias")
            for role in ("gate", "up"):
                tensors[role] = self.load(f"{mlp}{role}_proj.weight")
        tensors["o"] = self.load(attention + "o_proj.weight")
        tensors["down"] = self.load(mlp + "down_proj.weight")
        if spec.qk_norm:
            tensors["q_norm"] = self.load(attention + "q_norm.weight")
            tensors["k_norm"] = self.load(attention + "k_norm.weight")
        return LayerWeights(tensors)
