"""Per-architecture facts, as data keyed by the decoder's `config.model_type`.

Adding an architecture means adding a row here (and, for unusual tensors, a transform), never an
`if model == ...` branch in a target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gguf

from slmkit.converter.errors import SlmkitError


# Llama-style pre-norm blocks: transformers' LlamaDecoderLayer, Qwen2DecoderLayer, Phi3DecoderLayer.
PRE_NORMS = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}
# Gemma 3's sandwich norms (transformers' Gemma3DecoderLayer).
SANDWICH_NORMS = {"attn_norm": "input_layernorm", "attn_out_norm": "post_attention_layernorm",
                  "mlp_norm": "pre_feedforward_layernorm", "mlp_out_norm": "post_feedforward_layernorm"}


@dataclass(frozen=True)
class Architecture:
    model_type: str
    gguf_arch: gguf.MODEL_ARCH
    # llama.cpp's llama graph expects Q/K rows interleaved per RoPE pair, HF stores halves.
    permute_qk: bool = False
    # Gemma's RMSNorm computes x * (1 + w); llama.cpp computes x * w, so +1 is folded in.
    norm_shift: float = 0.0
    # Gemma pads the embedding past the tokenizer's vocabulary; llama.cpp wants them equal.
    trim_embeddings_to_vocab: bool = False
    # Hyper-parameters written with explicit fallbacks when config.json leaves them out.
    defaults: dict[str, object] = field(default_factory=dict)
    # Architecture-specific GGUF keys llama.cpp reads for this graph.
    writes_vocab_size: bool = False
    writes_rope_dimension_count: bool = False
    writes_sliding_window: bool = False
    writes_final_logit_softcapping: bool = False
    # Phi-3 family: llama.cpp reads longrope as two factor tensors plus an attention factor,
    # and the pre-scaling context length; it wants no head_dim or rope-scaling-type keys.
    longrope_tensors: bool = False
    writes_head_dim: bool = True
    # onnxruntime-genai's `model.type` for this decoder; None = the ONNX target refuses it.
    genai_type: str | None = None
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
    "llama": Architecture(
        "llama",
        gguf.MODEL_ARCH.LLAMA,
        permute_qk=True,
        writes_vocab_size=True,
        writes_rope_dimension_count=True,
        genai_type="llama",
    ),
    "gemma3_text": Architecture(
        "gemma3_text",
        gguf.MODEL_ARCH.GEMMA3,
        norm_shift=1.0,
        trim_embeddings_to_vocab=True,
        defaults={
            "max_position_embeddings": 131072,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "rms_norm_eps": 1e-6,
            "head_dim": 256,
            "rope_theta": 1_000_000.0,
        },
        writes_sliding_window=True,
        writes_final_logit_softcapping=True,
        genai_type="gemma3_text",
        layer_norms=SANDWICH_NORMS,
        qk_norm=True,
        scaled_embeddings=True,
    ),
    "qwen2": Architecture("qwen2", gguf.MODEL_ARCH.QWEN2, genai_type="qwen2"),
    "phi3": Architecture(
        "phi3",
        gguf.MODEL_ARCH.PHI3,
        writes_rope_dimension_count=True,
        writes_sliding_window=True,
        longrope_tensors=True,
        writes_head_dim=False,
        fused_projections=True,
        genai_type="phi3",
    ),
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
    return sorted(ARCHITECTURES) + sorted(f"{k} (text decoder)" for k in MULTIMODAL)


def architecture_for(model_type: str) -> Architecture:
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        raise SlmkitError(
            f"Unsupported architecture '{model_type}'.",
            hint=f"Supported: {', '.join(supported_model_types())}.",
        ) from None
