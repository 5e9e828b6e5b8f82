"""The fp16 range rewrite: same function in float32, finite in fp16 where the original overflows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slmkit.converter.architectures import ARCHITECTURES
from slmkit.converter.models.resolve import resolve
from slmkit.converter.models.text_decoder import load_text_decoder
from slmkit.converter.targets.coreml.fp16_safe import TARGET_PEAK, make_fp16_safe, rope_tables, stream_scale

IDS = torch.tensor([[(i * 37 + 11) % 390 + 5 for i in range(24)]])


def loud_decoder(path) -> torch.nn.Module:
    """The fixture with 'massive activations': embeddings x 3000 put the residual stream in the thousands."""
    model = load_text_decoder(resolve(str(path)))
    model.get_input_embeddings().register_forward_hook(lambda module, inputs, output: output * 3000.0)
    return model


@pytest.mark.parametrize("name", ["llama", "gemma3", "qwen2"])
def test_rewrite_is_exact_in_float32(name: str, fixture_dir) -> None:
    model = loud_decoder(fixture_dir(name))
    with torch.no_grad():
        before = model(input_ids=IDS).logits.numpy()
        fp16_range = make_fp16_safe(model, ARCHITECTURES[model.config.model_type], fixture_dir(name))
        after = model(input_ids=IDS).logits.numpy()
    assert fp16_range.peak > TARGET_PEAK and fp16_range.scale == stream_scale(fp16_range.peak) > 1
    assert fp16_range.norms >= 2 * model.config.num_hidden_layers + 1
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())


def test_scale_is_a_power_of_two_reaching_the_target() -> None:
    assert stream_scale(100.0) == 1 and stream_scale(TARGET_PEAK) == 1
    assert stream_scale(25669.1) == 16 and stream_scale(104060.9) == 64


@pytest.mark.parametrize("name", ["gemma3", "gemma3-multimodal", "llama"])
def test_rope_tables_match_on_the_fly_rotary(name: str, fixture_dir) -> None:
    """Table lookups give PyTorch's own cos/sin (including Gemma 3's per-layer-type RoPE and the
    4B/12B linear scaling), so the logits do not move."""
    model = load_text_decoder(resolve(str(fixture_dir(name))))
    with torch.no_grad():
        before = model(input_ids=IDS).logits.numpy()
        assert rope_tables(model, 64) >= 1
        after = model(input_ids=IDS).logits.numpy()
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5 * np.abs(before).max())
