"""ONNX conversion end to end on the tiny fixtures: graph interface, quantization, .ort, genai, parity."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def onnx_artifact(fixture_dir, tmp_path_factory: pytest.TempPathFactory):
    """Convert (once per module) a fixture at a quantization; returns the artifact folder."""
    root = tmp_path_factory.mktemp("onnx")
    built: dict[tuple[str, str], Path] = {}

    def get(name: str, quant: str) -> Path:
        if (name, quant) not in built:
            out = root / f"{name}-{quant}"
            result = run_cli("convert", str(fixture_dir(name)), "--target", "onnx", "--quant", quant, "--output", str(out))
            assert result.returncode == 0, result.stderr
            built[name, quant] = out
        return built[name, quant]

    return get


def parity(artifact: Path, tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / f"parity-{len(list(tmp_path.glob('parity-*')))}.json"
    result = run_cli("parity", str(artifact), "--report", str(report), "--steps", "8", *extra)
    data = json.loads(report.read_text())
    assert result.returncode == (0 if data["passed"] else 1), result.stderr
    return data


def model_bytes(artifact: Path) -> int:
    return sum((artifact / name).stat().st_size for name in ("model.onnx", "model.onnx.data"))


@pytest.mark.parametrize("name", ["llama", "gemma3", "qwen2", "gemma3-multimodal", "phi4-mini"])
def test_fp32_passes_parity_in_onnxruntime_genai(name: str, onnx_artifact, tmp_path: Path) -> None:
    """Exact to float rounding for every architecture, Phi-4-mini's longrope included (the fixture's
    256-token original context is passed by the long prompt, so both factor sets run)."""
    artifact = onnx_artifact(name, "fp32")
    for file in ("model.onnx", "model.onnx.data", "model.ort", "model.required_operators.config", "genai_config.json",
                 "tokenizer.json", "tokenizer_config.json", "manifest.json"):
        assert (artifact / file).is_file(), file
    report = parity(artifact, tmp_path)
    assert report["passed"], json.dumps(report["checks"], indent=1)
    assert report["runner"] == "onnxruntime-genai"
    assert report["metrics"]["kl_mean"] < 1e-9 and report["metrics"]["tokenizer_match"] == 1.0
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["conversion"]["ort_matches_onnx"] is True
    assert manifest["parity"]["passed"] is True


def test_graph_interface_and_genai_config(onnx_artifact) -> None:
    artifact = onnx_artifact("gemma3", "fp32")
    model = onnx.load(artifact / "model.onnx")
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    assert list(inputs)[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert inputs["past_key_values.0.key"] == ["batch", 1, "past_sequence", 32]
    assert outputs[0] == "logits" and outputs[1:3] == ["present.0.key", "present.0.value"]
    assert len(outputs) == 1 + 2 * 6
    graph_only = onnx.load(artifact / "model.onnx", load_external_data=False).graph
    assert {t.data_location for t in graph_only.initializer if t.name.endswith(".weight.T")} == {
        onnx.TensorProto.EXTERNAL}, "weights live in model.onnx.data"
    config = json.loads((artifact / "genai_config.json").read_text())
    assert config["model"]["type"] == "gemma3_text"
    assert config["model"]["decoder"]["num_hidden_layers"] == 6
    assert config["model"]["decoder"]["inputs"]["past_key_names"] == "past_key_values.%d.key"
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["conversion"]["sliding_window"] == 16
    usability = manifest["conversion"]["mobile_usability"]
    assert usability["CPU"]["coverage"] == 1.0
    assert 0 < usability["NNAPI"]["with_fixed_shapes"]["coverage"] <= 1


@pytest.mark.parametrize("engine", ["onnxruntime", "onnxruntime-mobile", "onnxruntime-genai-mobile"])
def test_other_engines_agree(engine: str, onnx_artifact, tmp_path: Path) -> None:
    report = parity(onnx_artifact("llama", "fp32"), tmp_path, "--engine", engine)
    assert report["passed"] and report["runner"] == engine
    assert report["metrics"]["kl_mean"] < 1e-9


@pytest.mark.parametrize("quant", ["int4", "int4-hqq"])
def test_int4_stores_a_tied_embedding_once(quant: str, onnx_artifact) -> None:
    artifact = onnx_artifact("llama", quant)
    model = onnx.load(artifact / "model.onnx")
    vocab = json.loads((artifact / "genai_config.json").read_text())["model"]["vocab_size"]
    by_name = {i.name: i for i in model.graph.initializer}
    vocab_tables = [i.name for i in model.graph.initializer if i.dims and i.dims[0] == vocab and len(i.dims) > 1]
    head = next(n for n in model.graph.node if n.op_type == "MatMulNBits" and n.output[0] == "logits")
    lookup = next(n for n in model.graph.node if n.op_type == "GatherBlockQuantized")
    assert lookup.input[0] == head.input[1]  # the same packed table serves both
    assert [name for name in vocab_tables if by_name[name].data_type == onnx.TensorProto.UINT8] == [head.input[1]]
    assert not any(n.op_type == "MatMul" for n in model.graph.node if n.output[0] == "logits")
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["conversion"]["tied_embeddings"] == "shared"
    assert manifest["conversion"]["ort_matches_onnx"] is True
    ops = (artifact / "model.required_operators.config").read_text()
    assert "MatMulNBits" in ops and "GatherBlockQuantized" in ops
    assert model_bytes(artifact) < 0.4 * model_bytes(onnx_artifact("llama", "fp32"))
    four_bit = [n for n in model.graph.node if n.op_type == "MatMulNBits"
                and next(a.i for a in n.attribute if a.name == "bits") == 4]
    assert four_bit and all(next(a.i for a in n.attribute if a.name == "accuracy_level") == 4 for n in four_bit)
    zero_points = {by_name[n.input[3]].data_type for n in four_bit}  # HQQ: float, RTN: packed uint8
    assert zero_points == ({onnx.TensorProto.FLOAT} if quant == "int4-hqq" else {onnx.TensorProto.UINT8})


def test_untied_model_quantizes_its_embedding_separately(onnx_artifact) -> None:
    artifact = onnx_artifact("qwen2", "int4")
    model = onnx.load(artifact / "model.onnx")
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("GatherBlockQuantized") == 1 and "Gather" not in [
        n.op_type for n in model.graph.node if "input_ids" in n.input]
    assert json.loads((artifact / "manifest.json").read_text())["conversion"]["tied_embeddings"] == "untied"


def test_int8_stays_close_to_the_reference(onnx_artifact, tmp_path: Path) -> None:
    """Random tiny weights quantize worse than trained ones; this bounds the graph, not the thresholds."""
    report = parity(onnx_artifact("llama", "int8"), tmp_path)
    assert report["metrics"]["top1_agreement"] > 0.9
    assert report["metrics"]["kl_mean"] < 0.02


def test_fp16_halves_the_file_and_passes_parity(onnx_artifact, tmp_path: Path) -> None:
    artifact = onnx_artifact("gemma3", "fp16")
    report = parity(artifact, tmp_path)
    assert report["passed"], json.dumps(report["checks"], indent=1)
    assert model_bytes(artifact) < 0.6 * model_bytes(onnx_artifact("gemma3", "fp32"))
    assert json.loads((artifact / "manifest.json").read_text())["conversion"]["ort_matches_onnx"] is True
