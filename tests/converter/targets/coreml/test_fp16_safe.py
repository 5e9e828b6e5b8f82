"""The fp16 range rewrite: calibrated on the streamed reference, exact in float32 in the built program."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from slmkit.converter.models.resolve import resolve
from slmkit.converter.models.reference import load_reference_model
from slmkit.converter.targets.coreml.fp16_safe import TARGET_PEAK, calibrate, residual_peak, stream_scale

IDS = [(i * 37 + 11) % 390 + 5 for i in range(24)]


def loud_checkpoint(fixture: Path, tmp_path: Path) -> Path:
    """The fixture with 'massive activations': embeddings x 3000 put the residual stream in the thousands."""
    from safetensors.numpy import load_file, save_file

    loud = tmp_path / f"loud-{fixture.name}"
    shutil.copytree(fixture, loud)
    weights = load_file(loud / "model.safetensors")
    for name in weights:
        if name.endswith("embed_tokens.weight"):
            weights[name] = weights[name] * 3000.0
    save_file(weights, loud / "model.safetensors", metadata={"format": "pt"})
    return loud


def test_scale_is_a_power_of_two_reaching_the_target() -> None:
    assert stream_scale(100.0) == 1 and stream_scale(TARGET_PEAK) == 1
    assert stream_scale(25669.1) == 16 and stream_scale(104060.9) == 64


@pytest.mark.parametrize("name", ["llama", "gemma3-multimodal"])
def test_streamed_calibration_sees_the_resident_models_peak(name: str, fixture_dir, tmp_path: Path) -> None:
    """Layers read from disk one at a time give the same residual peak as the model held in memory."""
    ckpt = resolve(str(loud_checkpoint(fixture_dir(name), tmp_path)))
    streamed = calibrate(ckpt)
    resident = residual_peak(load_reference_model(ckpt), ckpt.path, ckpt.architecture)
    assert streamed.peak == pytest.approx(resident, rel=1e-6)
    assert streamed.peak > TARGET_PEAK and streamed.scale == stream_scale(streamed.peak) > 1


@pytest.mark.parametrize("name", ["llama", "gemma3", "qwen2"])
def test_rewrite_is_exact_in_float32(name: str, fixture_dir, tmp_path: Path) -> None:
    """Scale-safe norms and a stream divided by 64, evaluated in float32: PyTorch's logits."""
    from slmkit.converter.models.decoder import DecoderWeights, decoder_spec
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator, quiet_coremltools
    from slmkit.converter.targets.coreml.program import DecoderProgram, StatefulLayout
    from slmkit.converter.targets.coreml.quantize import WeightCompressor
    from slmkit.converter.targets.coreml.target import program_to_mlmodel

    ckpt = resolve(str(loud_checkpoint(fixture_dir(name), tmp_path)))
    spec = decoder_spec(ckpt)
    layout = StatefulLayout(64, spec.layers, spec.kv_heads, spec.head_dim, spec.vocab_size)
    with quiet_coremltools():
        program = DecoderProgram(spec, DecoderWeights(ckpt, spec), layout, WeightCompressor("fp32", 32), fp16=False,
                                 stream_scale=64).build()
        program_to_mlmodel(program, layout, fp16=False, deployment_target="iOS18").save(str(tmp_path / "m.mlpackage"))
    evaluator = MilEvaluator(tmp_path / "m.mlpackage", round_fp16=False)
    got = evaluator.predict({"input_ids": np.array([IDS], np.int32), "attention_mask": np.ones((1, len(IDS)), np.int32)},
                            evaluator.make_state())["logits"][0]
    with torch.no_grad():
        expected = load_reference_model(ckpt)(input_ids=torch.tensor([IDS])).logits[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
