"""Files from elsewhere: router heads, encoder descriptions and genai configs are validated by one
schema each; a hostile or broken file is one SlmkitError naming it and the field, never a traceback
and never a read outside its folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.router.encoder import SentenceEncoder
from slmkit.runtime.router.head import LinearHead, load_head
from slmkit.runtime.validation import inside, relative_inside

json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)


def _head(folder: Path) -> Path:
    head = LinearHead("hashed-v1", ["simple", "medium", "complex"], np.ones((6, 3), dtype=np.float16),
                      np.zeros(3), buckets=4, dense=("a", "b"))
    path = folder / "router-head.json"
    head.save(path)
    return path


@pytest.mark.parametrize("value", ["../x", "/etc/passwd", "a/../b", "a\\b", "", "./a", "a//b", "x\x00y", "~/model", "~root/x"])
def test_paths_outside_or_unnormalised_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        relative_inside(value)


def test_a_symlink_on_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link").symlink_to(tmp_path / "out")
    with pytest.raises(SlmkitError, match="through a symlink"):
        inside(tmp_path / "in", "link/file", "spec.json")
    assert inside(tmp_path / "in", "sub/file", "spec.json") == tmp_path / "in" / "sub" / "file"


@pytest.mark.parametrize("change, message", [
    ({"weights_file": "../../secret.f16"}, "field weights_file: Value error, '../../secret.f16' is not a relative path"),
    ({"weights_file": "/etc/passwd"}, "field weights_file"),
    ({"labels": None}, "field labels"),
    ({"shape": [6, 4]}, "one column per label"),
    ({"shape": [5, 3]}, "fewer input rows"),
    ({"bias": [0, 0, float("nan")]}, "finite"),
    ({"bias": [0, 0, "0.1"]}, "field bias.2"),
    ({"version": 2}, "field version"),
])
def test_a_broken_or_hostile_head_header_names_its_field(tmp_path: Path, change: dict, message: str) -> None:
    path = _head(tmp_path)
    header = json.loads(path.read_text())
    header.update(change)
    path.write_text(json.dumps(header))
    with pytest.raises(SlmkitError, match="router-head.json is invalid") as caught:
        load_head(path)
    assert message in str(caught.value)


def test_a_missing_key_and_a_weights_file_of_the_wrong_size(tmp_path: Path) -> None:
    path = _head(tmp_path)
    assert load_head(path).weights.shape == (6, 3)
    header = json.loads(path.read_text())
    del header["weights_sha256"]
    path.write_text(json.dumps(header))
    with pytest.raises(SlmkitError, match="field weights_sha256: Field required"):
        load_head(path)
    _head(tmp_path)
    blob = (tmp_path / "router-head.f16").read_bytes()
    header = json.loads(path.read_text())
    header["weights_sha256"] = __import__("hashlib").sha256(blob[:-2]).hexdigest()
    path.write_text(json.dumps(header))
    (tmp_path / "router-head.f16").write_bytes(blob[:-2])
    with pytest.raises(SlmkitError, match="holds 34 bytes; shape \\[6, 3\\] needs 36"):
        load_head(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["format", "version", "features", "labels", "buckets", "dense", "shape", "bias", "weights_file",
                        "weights_sha256", "info", "label_groups", None]), json_values)
def test_any_head_header_loads_or_is_refused_cleanly(tmp_path: Path, key: str | None, value: object) -> None:
    path = _head(tmp_path)
    header = json.loads(path.read_text())
    if key is None:
        header = value
    else:
        header[key] = value
    path.write_text(json.dumps(header))
    try:
        load_head(path)
    except SlmkitError:
        pass


def _encoder(tmp_path: Path) -> Path:
    folder = tmp_path / "encoder"
    shutil.copytree(default_spec_path().parent / "encoder", folder)
    return folder


@pytest.mark.parametrize("change, message", [
    ({"model": "/etc/passwd"}, "field model"),
    ({"tokenizer": "../tokenizer.json"}, "field tokenizer"),
    ({"dim": "384"}, "field dim"),
    ({"max_tokens": 0}, "field max_tokens"),
])
def test_a_broken_or_hostile_encoder_description_names_its_field(tmp_path: Path, change: dict, message: str) -> None:
    folder = _encoder(tmp_path)
    config = json.loads((folder / "encoder.json").read_text())
    config.update(change)
    (folder / "encoder.json").write_text(json.dumps(config))
    with pytest.raises(SlmkitError, match="encoder.json is invalid") as caught:
        SentenceEncoder(folder)
    assert message in str(caught.value)


def test_an_encoder_tokenizer_that_is_not_one_fails_clearly(tmp_path: Path) -> None:
    folder = _encoder(tmp_path)
    assert SentenceEncoder(folder).encode("hello").shape == (384,)
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Nonsense"}}')
    with pytest.raises(SlmkitError, match="tokenizer.json is not a tokenizers tokenizer.json"):
        SentenceEncoder(folder)
    (folder / "encoder.json").write_text("[1, 2]")
    with pytest.raises(SlmkitError, match="is not a slmkit-sentence-encoder description"):
        SentenceEncoder(folder)


def test_a_genai_config_without_a_context_length_or_naming_a_file_outside_is_refused(tmp_path: Path) -> None:
    from slmkit.runtime.engines.genai import GenaiEngine

    for model, message in (({"decoder": {"filename": "model.onnx"}}, "field model.context_length: Field required"),
                           ({"context_length": 64, "decoder": {"filename": "../model.onnx"}}, "field model.decoder.filename")):
        (tmp_path / "genai_config.json").write_text(json.dumps({"model": model}))
        with pytest.raises(SlmkitError, match="genai_config.json is invalid") as caught:
            GenaiEngine(tmp_path)
        assert message in str(caught.value)
    (tmp_path / "genai_config.json").write_text("{not json")
    with pytest.raises(SlmkitError, match="is not an onnxruntime-genai config"):
        GenaiEngine(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["format", "version", "model", "model_sha256", "tokenizer", "max_tokens", "dim", None]), json_values)
def test_any_encoder_description_loads_or_is_refused_cleanly(tmp_path: Path, key: str | None, value: object) -> None:
    folder = tmp_path / "encoder"
    if not folder.is_dir():
        shutil.copytree(default_spec_path().parent / "encoder", folder)
    config = json.loads((default_spec_path().parent / "encoder" / "encoder.json").read_text())
    if key is None:
        config = value
    else:
        config[key] = value
    (folder / "encoder.json").write_text(json.dumps(config))
    try:
        SentenceEncoder(folder)
    except SlmkitError:
        pass
