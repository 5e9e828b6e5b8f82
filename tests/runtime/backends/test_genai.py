"""The onnxruntime-genai tier on a tiny Llama converted by `slmkit convert --target onnx`:
greedy, streamed, bounded by max_tokens and the context, and answering inside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.backends.genai import GenaiBackend
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TierSpec
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def artifact(fixture_dir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("genai") / "llama-onnx"
    result = run_cli("convert", str(fixture_dir("llama")), "--target", "onnx", "--quant", "fp32", "--output", str(out))
    assert result.returncode == 0, result.stderr
    return out


def tier(folder: Path, **kw) -> TierSpec:
    return TierSpec(name="on-device", backend="onnxruntime-genai", model=str(folder), on_device=True, threads=1, **kw)


def test_stream_then_generation_greedy_and_bounded(artifact: Path) -> None:
    backend = GenaiBackend(tier(artifact), artifact)
    messages = [{"role": "user", "content": "hello there"}]
    *pieces, final = list(backend.stream(messages, 6))
    assert isinstance(final, Generation) and "".join(pieces) == final.text
    assert 1 <= final.output_tokens <= 6 and final.input_tokens > 3 and final.ttft_ms is not None
    assert backend.generate(messages, 6).text == final.text  # greedy: the same answer twice


def test_prompt_longer_than_the_context_is_a_backend_error(artifact: Path) -> None:
    backend = GenaiBackend(tier(artifact, context_tokens=16), artifact)
    with pytest.raises(BackendError, match="does not fit"):
        backend.generate([{"role": "user", "content": "word " * 40}], 4)


def test_a_folder_without_genai_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="not an onnxruntime-genai folder"):
        GenaiBackend(tier(tmp_path), tmp_path)


def test_pipeline_answers_on_the_genai_tier(artifact: Path, tmp_path: Path) -> None:
    from slmkit.runtime.default import default_spec_path
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.request import Request
    from slmkit.runtime.spec import parse_spec

    data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    data["tiers"][0] = tier(artifact, max_tokens=5).model_dump(mode="json")
    data["confidence_check"]["tiers"] = []
    data["router"]["weights"] = str(default_spec_path().parent / "router-head.json")
    data["router"]["encoder"] = str(default_spec_path().parent / "encoder")
    pipeline = Pipeline(parse_spec(data), tmp_path)
    response = pipeline.handle(Request("Classify the sentiment of this review: \"I love this phone, the battery lasts for days.\""))
    assert response.trace.policy["tier"] == "on-device" and response.tier == "on-device"
    assert response.trace.steps[0].model == artifact.name and not response.trace.steps[0].simulated


def test_token_logprobs_and_continuation_read_the_generator_logits(artifact: Path) -> None:
    import numpy as np

    backend = GenaiBackend(tier(artifact), artifact)
    messages = [{"role": "user", "content": "hello there"}]
    scored = backend.generate(messages, 6, logprobs=True)
    assert scored.text == backend.generate(messages, 6).text
    assert len(scored.token_logprobs) == scored.output_tokens and min(scored.token_margins) >= 0  # greedy's argmax
    with backend.continuation(messages) as continuation:
        first = continuation.logprobs()
        assert np.exp(first).sum() == pytest.approx(1.0, abs=1e-4)
        token = int(first.argmax())
        assert first[token] == pytest.approx(scored.token_logprobs[0], abs=1e-4)  # the answer's first token
        continuation.append([token])
        assert continuation.logprobs()[int(continuation.logprobs().argmax())] == pytest.approx(scored.token_logprobs[1], abs=1e-4)
        assert backend.engine.tokenizer.decode(continuation.tokenize("hello there")) == "hello there"
