"""MODEL resolution: local folder, Hugging Face cache (offline), recipe, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.resolve import resolve


def fake_hub_cache(hf_home: Path, repo: str, source: Path, revision: str = "0123abcd") -> Path:
    """The folder layout huggingface_hub writes, so resolution can be tested without a network."""
    org, name = repo.split("/")
    cache = hf_home / "hub" / f"models--{org}--{name}"
    (cache / "refs").mkdir(parents=True)
    (cache / "refs" / "main").write_text(revision)
    shutil.copytree(source, cache / "snapshots" / revision)
    return cache / "snapshots" / revision


def test_local_folder(fixture_dir) -> None:
    ckpt = resolve(str(fixture_dir("qwen2")))
    assert ckpt.source["kind"] == "local" and ckpt.model_type == "qwen2"


def test_repo_id_from_the_cache_while_offline(fixture_dir, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    snapshot = fake_hub_cache(tmp_path, "acme/tiny-llama", fixture_dir("llama"))
    ckpt = resolve("acme/tiny-llama")
    assert ckpt.path == snapshot
    assert ckpt.source == {"kind": "hub", "repo": "acme/tiny-llama", "revision": "0123abcd"}


def test_uncached_repo_offline_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SlmkitError) as err:
        resolve("acme/not-there")
    assert "'acme/not-there' is not in the local Hugging Face cache" in str(err.value)
    assert "local checkpoint folder" in str(err.value)


def test_a_cached_snapshot_without_config_is_named_as_such(fixture_dir, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    snapshot = fake_hub_cache(tmp_path, "acme/half-downloaded", fixture_dir("llama"))
    (snapshot / "config.json").unlink()
    with pytest.raises(SlmkitError, match="'acme/half-downloaded' is in the Hugging Face cache .* has no config.json"):
        resolve("acme/half-downloaded")


def test_unknown_name() -> None:
    with pytest.raises(SlmkitError, match=r"(?s)Unknown model .lama-3.2-1b.*Did you mean: llama-3.2-1b"):
        resolve("lama-3.2-1b")
