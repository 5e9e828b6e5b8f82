"""The decoder description the graph builders read: facts per architecture, RoPE as transformers
computes it, weights streamed and split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slmkit.converter.models.decoder import DecoderWeights, decoder_spec
from slmkit.converter.models.resolve import resolve


def hf_rotary(ckpt, positions: torch.Tensor, layer_type: str | None):
    from slmkit.converter.models.decoder import _hf_text_config, _rotary_class

    config = _hf_text_config(ckpt)
    rotary = _rotary_class(config)(config=config)
    x = torch.zeros(1, dtype=torch.float32)
    kwargs = {"layer_type": layer_type} if layer_type and hasattr(rotary, f"{layer_type}_inv_freq") else {}
    cos, sin = rotary(x, positions[None], **kwargs)
    return cos[0].numpy(), sin[0].numpy()


@pytest.mark.parametrize("name", ["llama", "llama3-rope", "gemma3", "gemma3-multimodal", "qwen2", "phi4-mini"])
def test_rope_tables_are_transformers_own(name: str, fixture_dir) -> None:
    """Short and (Phi-4's longrope) long regimes, Gemma's per-layer-type bases, Llama 3 scaling."""
    ckpt = resolve(str(fixture_dir(name)))
    spec = decoder_spec(ckpt)
    for layer_type, rope in spec.ropes.items():
        short = 200  # under the phi fixture's 256-token original context
        cos, sin = rope.tables(short)
        expected_cos, expected_sin = hf_rotary(ckpt, torch.arange(short), layer_type)
        np.testing.assert_array_equal(cos, expected_cos)
        np.testing.assert_array_equal(sin, expected_sin)
        if rope.long_inv_freq is not None:
            cos, sin = rope.tables(300, long_factors=True)
            expected_cos, _ = hf_rotary(ckpt, torch.arange(300), layer_type)
            np.testing.assert_array_equal(cos, expected_cos)


def test_facts_per_architecture(fixture_dir) -> None:
    gemma = decoder_spec(resolve(str(fixture_dir("gemma3"))))
    assert gemma.norm_shift == 1.0 and gemma.qk_norm and gemma.embed_scale == pytest.approx(64 ** 0.5)
    assert gemma.sliding_window == 16 and set(gemma.layer_types) == {"sliding_attention", "full_attention"}
    assert gemma.activation == "gelu_tanh" and gemma.attention_scale == pytest.approx(32 ** -0.5)
    assert set(gemma.ropes) == {"sliding_attention", "full_attention"}
    qwen = decoder_spec(resolve(str(fixture_dir("qwen2"))))
    assert qwen.qkv_bias and not qwen.tied and qwen.norm_shift == 0.0 and qwen.embed_scale is None
    phi = decoder_spec(resolve(str(fixture_dir("phi4-mini"))))
    rope = phi.ropes["full_attention"]
    assert rope.rotary_dim == int(0.75 * phi.head_dim) and rope.long_inv_freq is not None
    assert rope.original_max == 256 and rope.attention_scaling > 1.0


def test_fused_projections_are_split_on_read(fixture_dir) -> None:
    """Phi-3's qkv_proj and gate_up_proj come out as the q/k/v and gate/up the builders expect."""
    from safetensors import safe_open

    ckpt = resolve(str(fixture_dir("phi4-mini")))
    spec = decoder_spec(ckpt)
    layer = DecoderWeights(ckpt, spec).layer(1)
    with safe_open(ckpt.path / "model.safetensors", framework="pt") as handle:
        qkv = handle.get_tensor("model.layers.1.self_attn.qkv_proj.weight").numpy()
        gate_up = handle.get_tensor("model.layers.1.mlp.gate_up_proj.weight").numpy()
    assert layer["q"].shape == (spec.q_size, spec.hidden) and layer["v"].shape == (spec.kv_size, spec.hidden)
    np.testing.assert_array_equal(np.concatenate([layer["q"], layer["k"], layer["v"]]), qkv)
    np.testing.assert_array_equal(np.concatenate([layer["gate"], layer["up"]]), gate_up)


def test_multimodal_checkpoint_reads_only_the_text_decoder(fixture_dir) -> None:
    ckpt = resolve(str(fixture_dir("gemma3-multimodal")))
    weights = DecoderWeights(ckpt, decoder_spec(ckpt))
    assert all(name.startswith(("model.", "lm_head.")) for name in weights.refs)
    assert not any("vision" in ref.source_name for ref in weights.refs.values())
    rows = list(weights.rows("model.embed_tokens.weight", 100))
    assert sum(len(r) for r in rows) == weights.shape("model.embed_tokens.weight")[0] and rows[0].dtype == np.float32
