"""The PyTorch text decoder every graph target starts from, and the facts a runtime needs about it.

ONNX and Core ML both trace a transformers CausalLM behind a thin wrapper that owns the KV cache
and builds the 4D attention masks itself: transformers' mask builders do not trace (torch.jit
fails on them; torch.export freezes their shapes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmkit.converter.architectures import MULTIMODAL

if TYPE_CHECKING:
    import torch

    from slmkit.converter.models.checkpoint import Checkpoint


@dataclass(frozen=True)
class DecoderShape:
    """What a runtime needs to know to allocate and feed the cache."""

    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    hidden_size: int
    attention_heads: int
    context_length: int
    sliding_window: int | None
    layer_types: tuple[str, ...]


def load_text_decoder(ckpt: Checkpoint) -> torch.nn.Module:
    """The decoder as a transformers CausalLM in fp32 eager attention (multimodal: text part only)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    layout = MULTIMODAL.get(ckpt.config.get("model_type", ""))
    key_mapping = None if layout is None else {f"^{re.escape(old)}": new for old, new in layout.rename_prefixes}
    previous = hf_logging.get_verbosity()
    # A multimodal checkpoint's vision weights are left out on purpose; config keys transformers
    # does not use (`loss_type: null`) are not the user's concern either.
    hf_logging.set_verbosity_error()
    try:
        text = dict(ckpt.text_config)
        config = AutoConfig.for_model(text.pop("model_type"), **text)
        model = AutoModelForCausalLM.from_pretrained(ckpt.path, config=config, dtype=torch.float32,
                                                     attn_implementation="eager", key_mapping=key_mapping)
    finally:
        hf_logging.set_verbosity(previous)
    return model.eval()


def decoder_shape(model: torch.nn.Module, ckpt: Checkpoint) -> DecoderShape:
    config = model.config
    layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers)
    return DecoderShape(
        layers=config.num_hidden_layers,
        kv_heads=config.num_key_value_heads,
        head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        attention_heads=config.num_attention_heads,
        context_length=ckpt.recipe.context_length if ckpt.recipe else config.max_position_embeddings,
        sliding_window=getattr(config, "sliding_window", None) if "sliding_attention" in layer_types else None,
        layer_types=layer_types,
    )


def attention_masks(model: torch.nn.Module, shape: DecoderShape, past_len: Any, new: Any,
                    attention_mask: torch.Tensor, lowest: float) -> Any:
    """Additive 4D masks [1|batch, 1, new, past+new] for the model's forward, one per layer type.

    `attention_mask` is the usual 2D padding mask over past + new tokens. Only `.view` reshapes are
    used (Core ML's converter mishandles `unsqueeze` on flexible lengths). Models configured with
    `layer_types` (Gemma 3, Qwen 2) take a dict; Gemma 3's sliding layers see only the window.
    """
    import torch

    total = past_len + new
    kv_slot = torch.arange(total, device=attention_mask.device).view(1, total)
    q_slot = torch.arange(past_len, total, device=attention_mask.device).view(new, 1)
    not_padding = attention_mask.bool().view(-1, 1, 1, total)

    def additive(allowed: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.logical_and(allowed.view(1, 1, new, total), not_padding), 0.0, lowest)

    causal = kv_slot <= q_slot
    if getattr(model.config, "layer_types", None) is None:
        return additive(causal)
    masks = {"full_attention": additive(causal)}
    if shape.sliding_window:
        masks["sliding_attention"] = additive(torch.logical_and(causal, q_slot - kv_slot < shape.sliding_window))
    return masks
