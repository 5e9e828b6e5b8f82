"""Gemma 3 1B at its real shapes (random bf16 weights from `slmkit models synth`) through every
target at its exact quantization, with parity passing on the result: the layer-by-layer builders,
the streamed reference and the memory-mapped logits at a 262K vocabulary and 26 layers. Exact
quantizations are the ones a conversion bug cannot hide in: random weights make quantized outputs
far more sensitive than a trained model's (docs/scale.md).

Memory and time are targets for `bench/scale.py`, not for tests (these machines are noisy).
Marked `scale` (~20 minutes on 2 cores): `make test-scale`; `.ci/run` runs it when the budget
allows after the slow tier.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.scale

MODEL = "gemma-3-1b"
EXACT = {"gguf": "f32", "onnx": "fp32", "coreml": "fp32"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scale") / MODEL
    result = run_cli("models", "synth", MODEL, "--output", str(folder), timeout=1200)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.parametrize("target", sorted(EXACT))
def test_1b_converts_and_passes_parity(target: str, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{MODEL}-{target}"
    result = run_cli("convert", str(checkpoint), "--target", target, "--quant", EXACT[target], "--output", str(out),
                     timeout=1800)
    assert result.returncode == 0, result.stderr
    report_path = tmp_path / "parity.json"
    result = run_cli("parity", str(out), "--report", str(report_path), "--threads", "2", timeout=1800)
    assert report_path.is_file(), result.stderr
    report = json.loads(report_path.read_text())
    assert result.returncode == 0 and report["passed"], json.dumps(report["checks"], indent=1)
    assert report["metrics"]["positions"] > 1000 and report["metrics"]["tokenizer_match"] == 1.0
