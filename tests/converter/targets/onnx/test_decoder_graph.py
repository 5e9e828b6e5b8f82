"""The ONNX graph builder: every architecture rule is needed (mutations fail parity), weights go to
external data as they are built, and models over the .ort size limit skip the .ort step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from slmkit.converter.models.resolve import resolve
from tests.converter.targets.mutations import IDS, MUTATIONS, assert_rule_is_needed, intact_runs


def onnx_logits(spec, weights, folder: Path, ids: list[int]) -> np.ndarray:
    import onnxruntime as ort

    from slmkit.converter.targets.onnx.builder import GraphBuilder
    from slmkit.converter.targets.onnx.decoder_graph import DecoderGraph, past_names
    from slmkit.converter.targets.onnx.quantize import quant_plan
    from slmkit.converter.targets.onnx.target import OPSET

    folder.mkdir()
    builder = GraphBuilder(folder / "model.onnx.data", OPSET)
    DecoderGraph(builder, spec, weights, quant_plan("fp32", 32)).build()
    builder.save(folder / "model.onnx", {"": OPSET, "com.microsoft": 1})
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
             "position_ids": np.arange(len(ids), dtype=np.int64)[None]}
    for name in past_names(spec.layers):
        feeds[name] = np.zeros((1, spec.kv_heads, 0, spec.head_dim), np.float32)
    return session.run(["logits"], feeds)[0][0]


def build_logits(spec, weights, folder: Path) -> np.ndarray:
    return onnx_logits(spec, weights, folder / "model", IDS)


@pytest.fixture(scope="module")
def exact(fixture_dir, tmp_path_factory: pytest.TempPathFactory):
    return intact_runs(fixture_dir, tmp_path_factory.mktemp, build_logits)


@pytest.mark.parametrize("rule", list(MUTATIONS))
def test_each_architecture_rule_is_needed(rule: str, exact, tmp_path: Path) -> None:
    assert_rule_is_needed("onnx", rule, exact, build_logits, tmp_path)


def test_large_models_skip_the_ort_file_and_still_pass(fixture_dir, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the .ort size limit (2 GB; lowered here) the artifact is model.onnx + model.onnx.data."""
    from slmkit.converter.convert import convert
    from slmkit.converter.parity.check import check_artifact
    from slmkit.converter.targets.onnx import mobile

    monkeypatch.setattr(mobile, "ORT_SIZE_LIMIT", 1024)
    model = str(fixture_dir("qwen2"))
    out = convert(model, resolve(model), "onnx", "fp32", tmp_path / "out", force=False)
    assert sorted(p.name for p in out.glob("model*")) == ["model.onnx", "model.onnx.data"]
    conversion = json.loads((out / "manifest.json").read_text())["conversion"]
    assert "skipped" in conversion["ort_format"] and "ort_file" not in conversion
    graph = onnx.load(out / "model.onnx", load_external_data=False).graph
    external = [t for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(entry.value == "model.onnx.data" for t in external for entry in t.external_data
                            if entry.key == "location")
    assert (out / "model.onnx").stat().st_size < 0.1 * (out / "model.onnx.data").stat().st_size
    assert check_artifact(out, steps=4)["passed"]
