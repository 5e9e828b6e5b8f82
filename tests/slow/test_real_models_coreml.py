"""The embedded default models through the Core ML target, checked on Linux by the MIL evaluator with
device-like fp16 rounding: fp16 and int4 pass parity with no fp16 overflow left, and greedy text
generated through the stateful program answers the fact question."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.slow.test_real_models import FACT, MODELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def coreml_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("real-coreml")
    artifacts = {}
    for name in MODELS:
        for quant in ("fp16", "int4"):
            out = root / f"{name}-{quant}"
            result = run_cli("convert", name, "--target", "coreml", "--quant", quant, "--output", str(out),
                             timeout=1800)
            assert result.returncode == 0, result.stderr
            artifacts[name, quant] = out
    return artifacts


@pytest.mark.parametrize("quant", ["fp16", "int4"])
@pytest.mark.parametrize("name", MODELS)
def test_passes_parity_with_fp16_rounding(name: str, quant: str, coreml_artifacts, tmp_path: Path) -> None:
    report_path = tmp_path / "parity.json"
    result = run_cli("parity", str(coreml_artifacts[name, quant]), "--report", str(report_path), "--threads", "2",
                     timeout=1800)
    report = json.loads(report_path.read_text())
    assert result.returncode == 0, json.dumps(report["checks"], indent=1)
    assert report["passed"] and report["runner"] == "coreml-evaluator"
    assert report["runner_details"]["fp16_overflows"] == {}
    assert report["metrics"]["tokenizer_match"] == 1.0 and report["metrics"]["positions"] > 1000
    conversion = json.loads((coreml_artifacts[name, quant] / "manifest.json").read_text())["conversion"]
    assert conversion["residual_scale"] != "1/1", "real models need their residual stream scaled for fp16"


@pytest.mark.parametrize("name", MODELS)
def test_stateful_program_generates_the_fact(name: str, coreml_artifacts) -> None:
    """Greedy decoding as an app would drive it: one prefill call, then one token per call."""
    from transformers import AutoTokenizer

    from slmkit.converter.targets.coreml.evaluator import MilEvaluator

    artifact = coreml_artifacts[name, "int4"]
    tokenizer = AutoTokenizer.from_pretrained(artifact / "tokenizer")
    prompt, expected = FACT[name]
    if isinstance(prompt, list):
        prompt = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    program = MilEvaluator(artifact / "model.mlpackage")
    state = program.make_state()
    logits = program.predict({"input_ids": np.array([ids], np.int32),
                              "attention_mask": np.ones((1, len(ids)), np.int32)}, state)["logits"]
    generated = [int(logits[0, -1].argmax())]
    for _ in range(11):
        logits = program.predict({"input_ids": np.array([[generated[-1]]], np.int32),
                                  "attention_mask": np.ones((1, len(ids) + len(generated)), np.int32)}, state)["logits"]
        generated.append(int(logits[0, -1].argmax()))
    text = tokenizer.decode(generated, skip_special_tokens=True)
    assert expected in text.lower(), text
