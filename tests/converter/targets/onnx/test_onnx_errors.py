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


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "onnx", "--block-size", "48"], "--block-size 48 is not supported"),
    # A power of two onnxruntime's MatMulNBits cannot quantize: refused before the build, not after.
    (["--target", "onnx", "--block-size", "512"], "quantizes blocks of 16, 32, 64, 128, 256"),
    (["--target", "onnx", "--quant", "fp32", "--block-size", "32"], "applies to int8/int4 only"),
    (["--target", "gguf", "--block-size", "32"], "does not apply to GGUF"),
    (["--target", "onnx", "--quant", "q4_k_m"], "has no quantization 'q4_k_m'"),
])
def test_bad_options(args: list[str], message: str, fixture_dir, tmp_path: Path) -> None:
    result = run_cli("convert", str(fixture_dir("llama")), *args, "--output", str(tmp_path / "a"))
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert leftovers(tmp_path) == []


def test_unknown_engine(fixture_dir, tmp_path: Path) -> None:
    gguf = tmp_path / "g"
    assert run_cli("convert", str(fixture_dir("llama")), "--quant", "f16", "--output", str(gguf)).returncode == 0
    result = run_cli("parity", str(gguf), "--engine", "onnxruntime")
    assert result.returncode == 1
    assert "cannot be run with engine 'onnxruntime'" in result.stderr and "llama.cpp" in result.stderr


def test_model_from_a_newer_opset_names_the_onnxruntime_version(tmp_path: Path) -> None:
    import onnxruntime

    from slmkit.runtime.engines.onnxruntime import load_session

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "future.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)]), path)
    with pytest.raises(SlmkitError) as error:
        load_session(path, threads=1)
    assert "ONNX Runtime cannot load" in str(error.value)
    assert onnxruntime.__version__ in error.value.hint
