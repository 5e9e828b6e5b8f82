"""The Core ML program builder: every architecture rule is needed (mutations fail parity), and
the two flexible input lengths are independent dimensions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.models.decoder import DecoderWeights
from tests.converter.targets.mutations import IDS, MUTATIONS, assert_rule_is_needed, intact_runs


def build(spec, weights, folder: Path, cache_length: int = 512) -> Path:
    from slmkit.converter.targets.coreml.evaluator import quiet_coremltools
    from slmkit.converter.targets.coreml.program import DecoderProgram, StatefulLayout
    from slmkit.converter.targets.coreml.quantize import WeightCompressor
    from slmkit.converter.targets.coreml.target import program_to_mlmodel

    layout = StatefulLayout(cache_length, spec.layers, spec.kv_heads, spec.head_dim, spec.vocab_size)
    package = folder / "model.mlpackage"
    with quiet_coremltools():
        program = DecoderProgram(spec, weights, layout, WeightCompressor("fp32", 32), fp16=False, stream_scale=1).build()
        program_to_mlmodel(program, layout, fp16=False, deployment_target="iOS18").save(str(package))
    return package


def program_logits(package: Path, ids: list[int]) -> np.ndarray:
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator

    evaluator = MilEvaluator(package, round_fp16=False)
    return evaluator.predict({"input_ids": np.array([ids], np.int32), "attention_mask": np.ones((1, len(ids)), np.int32)},
                             evaluator.make_state())["logits"][0]


def build_logits(spec, weights, folder: Path) -> np.ndarray:
    return program_logits(build(spec, weights, folder), IDS)


@pytest.fixture(scope="module")
def exact(fixture_dir, tmp_path_factory: pytest.TempPathFactory):
    return intact_runs(fixture_dir, tmp_path_factory.mktemp, build_logits)


@pytest.mark.parametrize("rule", list(MUTATIONS))
def test_each_architecture_rule_is_needed(rule: str, exact, tmp_path: Path) -> None:
    assert_rule_is_needed("coreml", rule, exact, build_logits, tmp_path)


def test_new_tokens_and_mask_have_independent_lengths(exact, tmp_path: Path) -> None:
    """The saved program declares two flexible lengths, and a decode step (1 new token after
    past > 0) gives the logits a prefill of the whole sequence gives at that position."""
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator, load_program

    ckpt, spec, expected, _ = exact("gemma3")
    package = build(spec, DecoderWeights(ckpt, spec), tmp_path)
    function = load_program(package).functions["main"]
    ids_len = function.inputs["input_ids"].shape[1]
    mask_len = function.inputs["attention_mask"].shape[1]
    assert not isinstance(ids_len, int) and not isinstance(mask_len, int) and ids_len != mask_len
    evaluator = MilEvaluator(package, round_fp16=False)
    state = evaluator.make_state()
    ids = IDS[:40]
    evaluator.predict({"input_ids": np.array([ids[:39]], np.int32), "attention_mask": np.ones((1, 39), np.int32)}, state)
    step = evaluator.predict({"input_ids": np.array([ids[39:]], np.int32), "attention_mask": np.ones((1, 40), np.int32)},
                             state)["logits"][0, -1]
    np.testing.assert_allclose(step, expected[39], rtol=1e-4, atol=1e-4 * np.abs(expected[39]).max())
