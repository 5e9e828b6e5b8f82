"""Checkpoints from strangers: safetensors only, no remote code, files that are what they claim."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.resolve import resolve
from tests.cli.test_errors import assert_clean_failure
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def checkpoint(fixture_dir, tmp_path: Path) -> Path:
    copy = tmp_path / "ckpt"
    shutil.copytree(fixture_dir("llama"), copy)
    return copy


def test_a_pickle_checkpoint_is_refused_with_a_way_out(checkpoint: Path, tmp_path: Path) -> None:
    (checkpoint / "model.safetensors").rename(checkpoint / "pytorch_model.bin")
    with pytest.raises(SlmkitError, match="pytorch_model.bin is a pickle, which slmkit never loads") as caught:
        resolve(str(checkpoint))
    assert "save_pretrained(OUT) writes safetensors" in caught.value.hint
    result = run_cli("convert", str(checkpoint), "--target", "gguf", "--output", str(tmp_path / "out"))
    assert_clean_failure(result, "is a pickle", "save_pretrained")
    assert not (tmp_path / "out").exists()


def test_an_index_naming_a_file_outside_the_checkpoint_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    shutil.copy(checkpoint / "model.safetensors", tmp_path / "elsewhere.safetensors")
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"model.embed_tokens.weight": "../elsewhere.safetensors"}}))
    with pytest.raises(SlmkitError, match="weight_map.model.embed_tokens.weight: Value error, '../elsewhere.safetensors'"):
        resolve(str(checkpoint))
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(SlmkitError, match="index.json is invalid: field weight_map: Field required"):
        resolve(str(checkpoint))


@pytest.mark.parametrize("name, content, message", [
    ("config.json", "[1, 2]", "config.json is not a JSON object"),
    ("config.json", "{oops", "config.json is not a model config"),
    ("tokenizer.json", '{"model": 3}', "tokenizer.json is not a tokenizers tokenizer.json"),
    ("tokenizer_config.json", "[1]", "tokenizer_config.json is not a JSON object"),
    ("tokenizer.model", "not protobuf", "tokenizer.model is not a SentencePiece model"),
])
def test_files_that_are_not_what_they_claim_fail_clearly(checkpoint: Path, name: str, content: str, message: str) -> None:
    (checkpoint / name).write_text(content)
    with pytest.raises(SlmkitError, match=re.escape(message)):
        resolve(str(checkpoint))


def test_remote_code_is_never_run(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    (checkpoint / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    ckpt = resolve(str(checkpoint))
    assert ckpt.model_type == "llama" and any("never runs a checkpoint's code" in note for note in ckpt.notes)
    sources = [p for folder in ("converter", "runtime", "cli") for p in (ROOT / folder).rglob("*.py")]
    offenders = [str(p) for p in sources if re.search(r"trust_remote_code\s*=\s*True", p.read_text(encoding="utf-8"))]
    assert sources and offenders == []
