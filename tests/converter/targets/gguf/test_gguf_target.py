"""GGUF conversion end to end on the tiny fixtures: file layout, quantization, llama.cpp parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf import GGUFReader

from tests.conftest import FIXTURE_NAMES, run_cli


def convert(model_dir: Path, out: Path, quant: str) -> Path:
    result = run_cli("convert", str(model_dir), "--target", "gguf", "--quant", quant, "--output", str(out))
    assert result.returncode == 0, result.stderr
    return out


def metadata(path: Path) -> dict:
    reader = GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_f16_conversion_passes_parity(name: str, fixture_dir, tmp_path: Path) -> None:
    artifact = convert(fixture_dir(name), tmp_path / "art", "f16")
    result = run_cli("parity", str(artifact), "--report", str(tmp_path / "parity.json"), "--steps", "8",
                     "--junit", str(tmp_path / "parity.xml"))
    report = json.loads((tmp_path / "parity.json").read_text())
    assert result.returncode == 0, result.stderr + json.dumps(report["checks"], indent=1)
    assert report["passed"] and report["quant"] == "f16" and report["runner"] == "llama.cpp"
    for key in ("top1_agreement", "kl_mean", "kl_max", "greedy_match", "tokenizer_match"):
        assert key in report["metrics"]
    assert report["metrics"]["kl_mean"] < 1e-4
    assert report["metrics"]["tokenizer_match"] == 1.0
    assert report["tokenizer"]["added_tokens_checked"] >= 3  # every fixture has added special tokens
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["parity"]["passed"] is True
    assert (tmp_path / "parity.xml").read_text().count("<testcase") == len(report["checks"])


def test_gemma_layout(fixture_dir, tmp_path: Path) -> None:
    artifact = convert(fixture_dir("gemma3"), tmp_path / "art", "f16")
    meta = metadata(next(artifact.glob("*.gguf")))
    assert meta["general.architecture"] == "gemma3"
    assert meta["gemma3.attention.sliding_window"] == 16
    assert meta["gemma3.rope.freq_base_swa"] == pytest.approx(10000.0)
    assert meta["tokenizer.ggml.pre"] == "gpt-2"


def test_multimodal_checkpoint_ships_only_the_text_decoder(fixture_dir, tmp_path: Path) -> None:
    result = run_cli("convert", str(fixture_dir("gemma3-multimodal")), "--quant", "f16", "--output", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert "only its text decoder" in result.stderr
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["architecture"] == "gemma3_text" and manifest["notes"]
    names = [t.name for t in GGUFReader(tmp_path / "a" / manifest["model_file"]).tensors]
    assert all(n.startswith(("blk.", "token_embd.", "output_norm.", "output.")) for n in names), names
    assert "blk.5.attn_q.weight" in names


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_quantized_with_llama_cpp(quant: str, fixture_dir, tmp_path: Path) -> None:
    artifact = tmp_path / "art"
    result = run_cli("convert", str(fixture_dir("llama")), "--target", "gguf", "--quant", quant, "--output", str(artifact))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((artifact / "manifest.json").read_text())
    gguf_file = artifact / manifest["model_file"]
    assert manifest["quant"] == quant and manifest["conversion"]["quantized_from"] == "f32"
    assert [p.name for p in artifact.iterdir() if p.suffix == ".gguf"] == [gguf_file.name]  # no leftover F32 file
    types = {t.tensor_type.name for t in GGUFReader(gguf_file).tensors}
    assert types & ({"Q8_0"} if quant == "q8_0" else {"Q4_K", "Q5_0", "Q5_1", "Q8_0", "Q6_K", "Q4_0"})
    assert metadata(gguf_file)["general.file_type"] == {"q8_0": 7, "q4_k_m": 15}[quant]
    assert "llama_model_loader" not in result.stdout + result.stderr  # llama.cpp's per-tensor log stays out of the output
    if quant == "q4_k_m":  # the fixture's rows are narrower than a 256-weight K-quant block
        assert sum(manifest["conversion"]["quant_fallbacks"].values()) > 0


def test_manifest_records_source_versions_and_hashes(fixture_dir, tmp_path: Path) -> None:
    from slmkit.runtime.checksums import sha256_file

    artifact = convert(fixture_dir("qwen2"), tmp_path / "art", "f16")
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "local" and manifest["source"]["safetensors_sha256"]
    assert {"slmkit", "torch", "transformers", "gguf", "llama_cpp_python"} <= set(manifest["versions"])
    for entry in manifest["files"]:
        assert sha256_file(artifact / entry["path"]) == entry["sha256"]
        assert (artifact / entry["path"]).stat().st_size == entry["size"]
    assert "tokenizer/tokenizer.json" in {entry["path"] for entry in manifest["files"]}


def test_user_prompts_are_added_to_the_builtin_set(fixture_dir, tmp_path: Path) -> None:
    artifact = convert(fixture_dir("llama"), tmp_path / "art", "f16")
    prompts = tmp_path / "mine.txt"
    prompts.write_text("Refund my order 1234, please.\n{\"id\": \"chat\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n")
    result = run_cli("parity", str(artifact), "--prompts", str(prompts), "--steps", "4", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    ids = [p["id"] for p in json.loads((tmp_path / "r.json").read_text())["prompts"]]
    assert ids[-2:] == ["mine.txt:1", "chat"] and len(ids) == 11


def test_built_in_prompts_longer_than_the_model_context_are_skipped_with_a_note(fixture_dir, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "short"
    shutil.copytree(fixture_dir("llama"), model)
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 256
    (model / "config.json").write_text(json.dumps(config))
    artifact = convert(model, tmp_path / "art", "f16")
    result = run_cli("parity", str(artifact), "--steps", "4", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert any(note.startswith("built-in prompt 'long-context' needs") and note.endswith("holds 256")
               for note in report["skipped_prompts"])
    assert "long-context" not in [p["id"] for p in report["prompts"]] and "skipped: built-in prompt" in result.stderr
