"""Per-architecture facts every target shares, as data keyed by the decoder's `config.model_type`:
the decoder's layout (norms, projections, embedding scale) as transformers implements it.

What a target writes per architecture lives with the target, one table each (as gguf-py keeps
`MODEL_TENSORS[arch]` per format): converter/targets/gguf/architectures.py (llama.cpp's keys and
tensor layout), converter/targets/onnx/architectures.py (onnxruntime-genai's model type). Adding an
architecture means adding a row to each table (and, for unusual tensors, a transform), never an
`if model == ...` branch in a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slmkit.converter.errors import SlmkitError


# Llama-style pre-norm blocks: transformers' LlamaDecoderLayer, Qwen2DecoderLayer, Phi3DecoderLayer.
PRE_NORMS = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}
# Gemma 3's sandwich norms (transformers' Gemma3DecoderLayer).
SANDWICH_NORMS = {"attn_norm": "input_layernorm", "attn_out_norm": "post_attention_layernorm",
                  "mlp_norm": "pre_feedforward_layernorm", "mlp_out_norm": "post_feedforward_layernorm"}


@dataclass(frozen=True)
class Architecture:
    model_type: str
    # Gemma's RMSNorm computes x * (1 + w) (transformers' Gemma3RMSNorm): every target folds the +1 in.
    norm_shift: float = 0.0
    # Hyper-parameters written with explicit fallbacks when config.json leaves them out.
    defaults: dict[str, object] = field(default_factory=dict)
    # Graph builders (converter/models/decoder.py): each layer's RMSNorms by role -> module name.
    # attn_norm / mlp_norm read the residual stream; attn_out_norm / mlp_out_norm (Gemma's sandwich
    # norms) normalize a block's output before it is added to the stream.
    layer_norms: dict[str, str] = field(default_factory=lambda: dict(PRE_NORMS))
    qk_norm: bool = False  # RMSNorm over each head's queries and keys before RoPE (Gemma 3)
    scaled_embeddings: bool = False  # token embeddings multiplied by sqrt(hidden) (Gemma)
    fused_projections: bool = False  # one qkv_proj and one gate_up_proj per layer (Phi-3)


@dataclass(frozen=True)
class MultimodalLayout:
    """Where a multimodal checkpoint keeps its text decoder: that decoder is what ships."""

    text_config_key: str
    # Prefix of the decoder's weights -> the prefix a text-only checkpoint would use.
    rename_prefixes: tuple[tuple[str, str], ...]
    # Everything else (vision tower, projector) is left out.


ARCHITECTURES: dict[str, Architecture] = {
    # transformers' LlamaForCausalLM (SmolLM2, Llama 3.2).
    "llama": Architecture("llama"),
    # transformers' Gemma3ForCausalLM (defaults: Gemma3TextConfig's).
    "gemma3_text": Architecture(
        "gemma3_text",
        norm_shift=1.0,
        defaults={
            "max_position_embeddings": 131072,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "rms_norm_eps": 1e-6,
            "head_dim": 256,
            "rope_theta": 1_000_000.0,
        },
        layer_norms=SANDWICH_NORMS,
        qk_norm=True,
        scaled_embeddings=True,
    ),
    # transformers' Qwen2ForCausalLM (q/k/v biases).
    "qwen2": Architecture("qwen2"),
    # transformers' Phi3ForCausalLM (Phi-4-mini): fused projections, longrope.
    "phi3": Architecture("phi3", fused_projections=True),
}

MULTIMODAL: dict[str, MultimodalLayout] = {
    "gemma3": MultimodalLayout(
        text_config_key="text_config",
        rename_prefixes=(
            ("model.language_model.", "model."),  # transformers >= 4.52 layout
            ("language_model.model.", "model."),  # original release layout
            ("language_model.lm_head.", "lm_head."),
            ("lm_head.", "lm_head."),
        ),
    ),
}


def supported_model_types() -> list[str]:
    """Every `model_type` slmkit converts, multimodal ones marked as shipping their text decoder."""
    return sorted(ARCHITECTURES) + sorted(f"{k} (text decoder)" for k in MULTIMODAL)


def architecture_for(model_type: str) -> Architecture:
    """The row for `model_type`. Raises SlmkitError listing the supported architectures."""
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        raise SlmkitError(
            f"Unsupported architecture '{model_type}'.",
            hint=f"Supported: {', '.join(supported_model_types())}.",
        ) from None
