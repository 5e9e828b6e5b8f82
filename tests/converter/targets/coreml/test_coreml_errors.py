"""Bad input to the Core ML target: one clear message, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError
from tests.conftest import run_cli


def convert(fixture: Path, out: Path, *extra: str):
    return run_cli("convert", str(fixture), "--target", "coreml", "--output", str(out), *extra)


@pytest.mark.parametrize("target,message", [
    ("iOS17", "Deployment target iOS17 cannot run a stateful model"),
    ("iOS12", "Unknown deployment target 'iOS12'"),
])
def test_deployment_target_older_than_ios18_is_refused(target: str, message: str, fixture_dir, tmp_path: Path) -> None:
    result = convert(fixture_dir("llama"), tmp_path / "out", "--deployment-target", target)
    assert result.returncode == 1
    assert message in result.stderr and "iOS18" in result.stderr
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_options_a_target_has_no_use_for_are_refused(fixture_dir, tmp_path: Path) -> None:
    gguf = run_cli("convert", str(fixture_dir("llama")), "--target", "gguf", "--cache-length", "512",
                   "--output", str(tmp_path / "g"))
    assert gguf.returncode == 1 and "--cache-length does not apply to --target gguf" in gguf.stderr
    palette = convert(fixture_dir("llama"), tmp_path / "p", "--quant", "palettize4", "--block-size", "32")
    assert palette.returncode == 1 and "--block-size applies to coreml int4 only" in palette.stderr
    too_long = convert(fixture_dir("llama"), tmp_path / "c", "--cache-length", "100000")
    assert too_long.returncode == 1 and "exceeds the model's context of 4096" in too_long.stderr
    assert list(tmp_path.iterdir()) == []


def test_architecture_feature_the_builder_lacks_is_refused_before_writing(fixture_dir, tmp_path: Path) -> None:
    """Attention logit soft-capping (Gemma 2) is not built: refused before anything is read or written."""
    checkpoint = tmp_path / "softcapped"
    shutil.copytree(fixture_dir("gemma3"), checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["attn_logit_softcapping"] = 50.0
    (checkpoint / "config.json").write_text(json.dumps(config))
    for target in ("coreml", "onnx"):
        result = run_cli("convert", str(checkpoint), "--target", target, "--output", str(tmp_path / "out"))
        assert result.returncode == 1, result.stderr
        assert "soft-capping" in result.stderr and "--target gguf" in result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def small_artifact(fixture_dir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coreml-errors") / "llama-fp16"
    result = convert(fixture_dir("llama"), out, "--quant", "fp16")
    assert result.returncode == 0, result.stderr
    return out


def test_corrupt_package_is_named(small_artifact: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(small_artifact, broken)
    weights = broken / "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[:500] + bytes(b ^ 0xFF for b in data[500:1000]) + data[1000:])  # same size
    result = run_cli("parity", str(broken), "--report", str(tmp_path / "p.json"))
    assert result.returncode == 1
    assert "model.mlpackage/Data/com.apple.CoreML/weights/weight.bin: does not match its sha256" in result.stderr

    weights.write_bytes(data[:1000])  # truncated: named by its size before any hashing
    result = run_cli("parity", str(broken), "--report", str(tmp_path / "p.json"))
    assert result.returncode == 1
    assert f"weight.bin: size 1000 bytes, manifest says {len(data)}" in result.stderr

    # Even with the manifest re-recorded (a package damaged before it was listed), the evaluator names it.
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator

    with pytest.raises(SlmkitError, match="ML program cannot be loaded|not a readable Core ML package"):
        MilEvaluator(broken / "model.mlpackage")


def test_core_ml_engine_needs_macos(small_artifact: Path, tmp_path: Path) -> None:
    import platform

    if platform.system() == "Darwin":
        pytest.skip("the real Core ML runtime is available here")
    result = run_cli("parity", str(small_artifact), "--engine", "coreml", "--report", str(tmp_path / "p.json"))
    assert result.returncode == 1
    assert "runs on macOS only" in result.stderr and "--engine coreml-evaluator" in result.stderr
    unknown = run_cli("parity", str(small_artifact), "--engine", "llama.cpp", "--report", str(tmp_path / "q.json"))
    assert unknown.returncode == 1 and "coreml-evaluator" in unknown.stderr


def test_parity_longer_than_the_cache_is_refused(small_artifact: Path, tmp_path: Path) -> None:
    result = run_cli("parity", str(small_artifact), "--steps", "5000", "--report", str(tmp_path / "p.json"))
    assert result.returncode == 1
    assert "holds 4096 tokens" in result.stderr and "--cache-length" in result.stderr
    manifest = json.loads((small_artifact / "manifest.json").read_text())
    assert manifest["parity"] is None, "a refused run records no verdict"


@pytest.mark.parametrize("context,expected", [(131072, 4096), (4096, 4096), (1000, 992), (32, 32)])
def test_the_default_cache_length_fits_any_context(context: int, expected: int) -> None:
    from slmkit.converter.targets.coreml.target import cache_length_for, default_cache_length

    assert default_cache_length(context) == expected
    assert cache_length_for(context, default_cache_length(context)) == expected


def test_a_context_shorter_than_one_state_block_is_refused() -> None:
    from slmkit.converter.targets.coreml.target import default_cache_length

    with pytest.raises(SlmkitError, match="shorter than the smallest Core ML state"):
        default_cache_length(16)


def test_a_zero_cache_length_is_refused_not_read_as_the_default(fixture_dir, tmp_path: Path) -> None:
    result = convert(fixture_dir("llama"), tmp_path / "z", "--cache-length", "0")
    assert result.returncode == 2 and "--cache-length" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
