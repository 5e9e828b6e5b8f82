"""Core ML conversion end to end on the tiny fixtures: the stateful program's interface, the
evaluator against PyTorch, compression, and `slmkit parity` on Linux."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.targets.coreml.evaluator import MilEvaluator, quiet_coremltools
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def coreml_artifact(fixture_dir, tmp_path_factory: pytest.TempPathFactory):
    """Convert (once per module) a fixture at a quantization; returns the artifact folder."""
    root = tmp_path_factory.mktemp("coreml")
    built: dict[tuple[str, str, tuple[str, ...]], Path] = {}

    def get(name: str, quant: str, *extra: str) -> Path:
        key = (name, quant, extra)
        if key not in built:
            out = root / f"{name}-{quant}-{len(built)}"
            result = run_cli("convert", str(fixture_dir(name)), "--target", "coreml", "--quant", quant,
                             "--output", str(out), *extra)
            assert result.returncode == 0, result.stderr
            built[key] = out
        return built[key]

    return get


def parity(artifact: Path, tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / f"parity-{len(list(tmp_path.glob('parity-*')))}.json"
    result = run_cli("parity", str(artifact), "--report", str(report), "--steps", "8", *extra)
    assert report.is_file(), result.stderr
    data = json.loads(report.read_text())
    assert result.returncode == (0 if data["passed"] else 1), result.stderr
    return data


def torch_logits(checkpoint: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def evaluator_logits(evaluator: MilEvaluator, ids: list[int], prefill: int) -> np.ndarray:
    """Prefill `prefill` tokens in one call, then feed the rest one at a time through the states."""
    state = evaluator.make_state()
    rows = [evaluator.predict({"input_ids": np.array([ids[:prefill]], np.int32),
                               "attention_mask": np.ones((1, prefill), np.int32)}, state)["logits"][0]]
    for position in range(prefill, len(ids)):
        rows.append(evaluator.predict({"input_ids": np.array([[ids[position]]], np.int32),
                                       "attention_mask": np.ones((1, position + 1), np.int32)}, state)["logits"][0])
    return np.concatenate(rows)


@pytest.mark.parametrize("name", ["llama", "gemma3", "qwen2"])
def test_fp32_program_matches_pytorch(name: str, coreml_artifact, fixture_dir) -> None:
    """Exact-math evaluation of the converted program equals PyTorch through prefill and cached
    steps; 30 tokens pass Gemma 3's 16-token sliding window, so both masks are exercised."""
    artifact = coreml_artifact(name, "fp32")
    ids = [(i * 37 + 11) % 390 + 5 for i in range(30)]
    got = evaluator_logits(MilEvaluator(artifact / "model.mlpackage", round_fp16=False), ids, prefill=24)
    expected = torch_logits(fixture_dir(name), ids)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5 * max(1.0, np.abs(expected).max())
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_the_runtimes_chunked_prefill_and_steps_match_pytorch(coreml_artifact, fixture_dir) -> None:
    """runtime/engines/coreml.py, the calls the Core ML tier and parity make: a prompt prefilled in
    chunks of 8 (so chunks start at past = 8, 16 and 24, across Gemma 3's 16-token window), then
    single-token steps with past > 0, gives PyTorch's logits at every position."""
    from slmkit.runtime.engines import coreml

    ids = [(i * 37 + 11) % 390 + 5 for i in range(30)]
    program = MilEvaluator(coreml_artifact("gemma3", "fp32") / "model.mlpackage", round_fp16=False)
    state = program.make_state()
    rows = [logits for _start, logits in coreml.prefill(program, state, ids[:26], chunk=8)]
    assert [len(r) for r in rows] == [8, 8, 8, 2]
    rows += [coreml.step(program, state, [token], position + 1) for position, token in enumerate(ids[26:], 26)]
    got = np.concatenate(rows)
    expected = torch_logits(fixture_dir("gemma3"), ids)
    assert np.abs(got - expected).max() < 1e-5 * max(1.0, np.abs(expected).max())
    whole = coreml.prefill_last(program, program.make_state(), ids[:26])  # one call of PREFILL_CHUNK (128)
    assert np.abs(whole - rows[3][-1]).max() < 1e-5 * max(1.0, np.abs(whole).max())


def test_multimodal_gemma3_ships_its_text_decoder(coreml_artifact, tmp_path: Path) -> None:
    artifact = coreml_artifact("gemma3-multimodal", "fp32")
    report = parity(artifact, tmp_path, "--engine", "coreml-evaluator-fp32")
    assert report["passed"], json.dumps(report["checks"], indent=1)
    assert report["metrics"]["kl_mean"] < 1e-9 and report["metrics"]["greedy_match"] == 1.0


def test_program_interface_and_metadata(coreml_artifact) -> None:
    artifact = coreml_artifact("gemma3", "fp16")
    with quiet_coremltools():
        import coremltools as ct

        spec = ct.models.MLModel(str(artifact / "model.mlpackage"), skip_model_load=True).get_spec()
    description = spec.description
    assert spec.specificationVersion >= 9, "iOS 18 / macOS 15 (stateful) program"
    assert [i.name for i in description.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in description.output] == ["logits"]
    assert [s.name for s in description.state] == ["key_cache", "value_cache"]
    state_shape = list(description.state[0].type.stateType.arrayType.shape)
    assert state_shape == [6, 1, 1, 4096, 32]
    ids_range = description.input[0].type.multiArrayType.shapeRange.sizeRanges[1]
    assert (ids_range.lowerBound, ids_range.upperBound) == (1, 4096)
    metadata = dict(description.metadata.userDefined)
    assert metadata["slmkit.cache_length"] == "4096" and metadata["slmkit.tokenizer_dir"] == "tokenizer"
    special = json.loads(metadata["slmkit.special_tokens"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    conversion = manifest["conversion"]
    assert conversion["cache_length"] == 4096 and conversion["deployment_target"] == "iOS18"
    assert set(conversion["states"]) == {"key_cache", "value_cache"}
    tokenizer_config = json.loads((artifact / "tokenizer" / "tokenizer_config.json").read_text())
    assert tokenizer_config["add_bos_token"] is special["bos"] and tokenizer_config["add_eos_token"] is special["eos"]
    assert "chat_template" in tokenizer_config
    assert any(entry["path"].startswith("model.mlpackage/") for entry in manifest["files"])


def test_newer_deployment_target_is_honoured(coreml_artifact) -> None:
    artifact = coreml_artifact("llama", "fp16", "--deployment-target", "iOS26", "--cache-length", "64")
    with quiet_coremltools():
        import coremltools as ct

        spec = ct.models.MLModel(str(artifact / "model.mlpackage"), skip_model_load=True).get_spec()
    assert spec.specificationVersion == 10, "iOS 26 programs are specification version 10"
    assert json.loads((artifact / "manifest.json").read_text())["conversion"]["deployment_target"] == "iOS26"


def test_parity_passes_on_linux_with_the_evaluator(coreml_artifact, tmp_path: Path) -> None:
    artifact = coreml_artifact("gemma3", "fp16")
    report = parity(artifact, tmp_path)
    assert report["passed"], json.dumps(report["checks"], indent=1)
    assert report["runner"] == "coreml-evaluator"
    assert report["metrics"]["tokenizer_match"] == 1.0
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is True and manifest["parity"]["runner"] == "coreml-evaluator"


def test_int4_parity_runs_and_is_recorded(coreml_artifact, tmp_path: Path) -> None:
    # 4-bit accuracy is judged on the trained embedded models (slow tier): random weights are ~10x
    # more sensitive to quantization (docs/scale.md), so the fixture only has to stay far below the
    # KL of a conversion bug (3-17 nats in tests/converter/targets/mutations.py).
    artifact = coreml_artifact("gemma3", "int4")
    report = parity(artifact, tmp_path)
    assert report["metrics"]["kl_mean"] < 2.0 and report["metrics"]["tokenizer_match"] == 1.0
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is report["passed"]
    assert manifest["parity"]["metrics"]["kl_mean"] == report["metrics"]["kl_mean"]


def test_fp16_rounding_makes_drift_visible(coreml_artifact, tmp_path: Path) -> None:
    artifact = coreml_artifact("llama", "fp16")
    rounded = parity(artifact, tmp_path)
    exact = parity(artifact, tmp_path, "--engine", "coreml-evaluator-fp32")
    assert rounded["passed"] and exact["passed"]
    assert exact["metrics"]["kl_mean"] < rounded["metrics"]["kl_mean"], "fp16 compute must cost something"


@pytest.mark.parametrize("quant,ops", [("int8", "constexpr_blockwise_shift_scale"),
                                       ("int4", "constexpr_blockwise_shift_scale"),
                                       ("palettize4", "constexpr_lut_to_dense")])
def test_compression_shrinks_the_weights(quant: str, ops: str, coreml_artifact) -> None:
    # A short cache keeps the (uncompressed) RoPE tables from dominating the tiny fixture's weights.
    fp16 = coreml_artifact("qwen2", "fp16", "--cache-length", "64")
    compressed = coreml_artifact("qwen2", quant, "--cache-length", "64")
    weights = "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"
    ratio = (compressed / weights).stat().st_size / (fp16 / weights).stat().st_size
    # int4 keeps the token table and output projection at 8 bits: both are large in a tiny fixture.
    assert ratio < {"int8": 0.6, "int4": 0.55, "palettize4": 0.45}[quant]
    manifest = json.loads((compressed / "manifest.json").read_text())
    assert manifest["conversion"]["compressed_ops"].get(ops, 0) >= 7, manifest["conversion"]


def test_cache_length_rounds_to_32_and_bounds_parity(coreml_artifact, tmp_path: Path) -> None:
    artifact = coreml_artifact("llama", "fp16", "--cache-length", "40")
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["conversion"]["cache_length"] == 64
    result = run_cli("parity", str(artifact), "--report", str(tmp_path / "p.json"), "--steps", "8")
    report = json.loads((tmp_path / "p.json").read_text())
    # The cache is the model's context on the device: built-in prompts past it are skipped, noted.
    assert result.returncode == 0, result.stderr
    assert report["skipped_prompts"] and all(note.endswith("holds 64") for note in report["skipped_prompts"])
    assert all(p["tokens"] + 8 + 1 <= 64 for p in report["prompts"])


def test_massive_activations_stay_finite_in_fp16(fixture_dir, tmp_path: Path) -> None:
    """A checkpoint whose residual stream reaches the thousands (as SmolLM2's and Gemma 3's do):
    squares overflow fp16 unless the norms and the stream are rewritten; parity shows none left."""
    import shutil

    from safetensors.numpy import load_file, save_file

    loud = tmp_path / "loud"
    shutil.copytree(fixture_dir("qwen2"), loud)
    weights = load_file(loud / "model.safetensors")
    weights["model.embed_tokens.weight"] = weights["model.embed_tokens.weight"] * 3000.0
    save_file(weights, loud / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "loud-fp16"
    result = run_cli("convert", str(loud), "--target", "coreml", "--quant", "fp16", "--output", str(out))
    assert result.returncode == 0, result.stderr
    conversion = json.loads((out / "manifest.json").read_text())["conversion"]
    assert conversion["residual_peak"] > 2048 and conversion["residual_scale"] != "1/1"
    report = parity(out, tmp_path)
    assert report["passed"], json.dumps(report["checks"], indent=1)
    assert report["runner_details"]["fp16_overflows"] == {}


@pytest.mark.skipif(__import__("platform").system() != "Darwin",
                    reason="Core ML prediction runs on macOS only; on Linux parity uses the MIL evaluator")
def test_real_core_ml_runtime_agrees_with_the_evaluator(coreml_artifact, tmp_path: Path) -> None:
    artifact = coreml_artifact("gemma3", "fp16")
    device = parity(artifact, tmp_path, "--engine", "coreml")
    assert device["passed"] and device["runner"] == "coreml"
    evaluator = parity(artifact, tmp_path, "--engine", "coreml-evaluator")
    assert abs(device["metrics"]["kl_mean"] - evaluator["metrics"]["kl_mean"]) < 1e-3


@pytest.mark.parametrize("kept", ["fp16", "integers"])
def test_large_weights_are_projected_in_row_blocks(coreml_artifact, monkeypatch: pytest.MonkeyPatch, kept: str) -> None:
    """A weight kept narrow (fp16, or past the fp16 budget its int4/int8 levels) is widened a block
    of rows at a time (no float32 copy of a 262K-row head), with the same logits."""
    import numpy as np

    from slmkit.converter.targets.coreml import evaluator as module
    from slmkit.converter.targets.coreml.lazy_weights import BlockwiseWeight, HalfWeight

    package = coreml_artifact("gemma3", "int4") / "model.mlpackage"
    ids = np.array([[5, 17, 42, 99, 3, 250]], dtype=np.int32)
    inputs = {"input_ids": ids, "attention_mask": np.ones((1, 6), np.int32)}
    whole = module.MilEvaluator(package, round_fp16=False)
    expected = np.array(whole.predict(inputs, whole.make_state())["logits"])
    monkeypatch.setattr(module, "DENSE_WEIGHTS_LIMIT", 0)  # every large weight stays fp16
    monkeypatch.setattr(module, "LAZY_MIN_ELEMENTS", 0)
    monkeypatch.setattr(module, "LINEAR_BLOCK_ELEMENTS", 1000)  # a few rows per block
    if kept == "integers":
        monkeypatch.setattr(module, "HALF_WEIGHTS_LIMIT", 0)
    blocked = module.MilEvaluator(package, round_fp16=False)
    kinds = {type(weight) for weight in blocked._lazy_weights.values()}
    assert BlockwiseWeight in kinds if kept == "integers" else kinds == {HalfWeight}
    got = np.array(blocked.predict(inputs, blocked.make_state())["logits"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # float32 summation order only
