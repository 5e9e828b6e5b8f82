"""Bad input to the ONNX target: one clear message, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from slmkit.converter.errors import SlmkitError
from tests.conftest import run_cli


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_unsupported_architecture_is_refused_before_writing(fixture_dir, tmp_path: Path) -> None:
    result = run_cli("convert", str(fixture_dir("phi4-mini")), "--target", "onnx", "--output", str(tmp_path / "a"))
    assert result.returncode == 1
    assert "does not support phi3" in result.stderr and "--target gguf" in result.stderr
    assert "Traceback" not in result.stderr and leftovers(tmp_path) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "onnx", "--block-size", "48"], "--block-size 48 is not supported"),
    (["--target", "onnx", "--quant", "fp32", "--block-size", "32"], "applies to int8/int4 only"),
    (["--target", "gguf", "--block-size", "32"], "does not apply to GGUF"),
    (["--target", "onnx", "--quant", "q4_k_m"], "has no quantization 'q4_k_m'"),
])
def test_bad_options(args: list[str], message: str, fixture_dir, tmp_path: Path) -> None:
    result = run_cli("convert", str(fixture_dir("llama")), *args, "--output", str(tmp_path / "a"))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert leftovers(tmp_path) == []


def test_export_failing_midway_leaves_nothing(fixture_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from rich.progress import Progress

    from slmkit.converter.convert import convert
    from slmkit.converter.models.resolve import resolve

    def broken_export(*args, **kwargs):
        raise RuntimeError("Cannot export: unsupported aten operator 'aten::fancy_op'")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    model = str(fixture_dir("llama"))
    with pytest.raises(SlmkitError, match="torch.onnx.export failed for LlamaForCausalLM: Cannot export"):
        with Progress(disable=True) as progress:
            convert(model, resolve(model), "onnx", "fp32", tmp_path / "out", force=False, progress=progress)
    assert leftovers(tmp_path) == []


def test_unknown_engine(fixture_dir, tmp_path: Path) -> None:
    gguf = tmp_path / "g"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(gguf)).returncode == 0
    result = run_cli("parity", str(gguf), "--engine", "onnxruntime")
    assert result.returncode == 1
    assert "cannot be run with engine 'onnxruntime'" in result.stderr and "llama.cpp" in result.stderr


def test_model_from_a_newer_opset_names_the_onnxruntime_version(tmp_path: Path) -> None:
    import onnxruntime

    from slmkit.converter.parity.ort_runner import load_session

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "future.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)]), path)
    with pytest.raises(SlmkitError) as error:
        load_session(path, threads=1)
    assert "ONNX Runtime cannot load" in str(error.value)
    assert onnxruntime.__version__ in error.value.hint
