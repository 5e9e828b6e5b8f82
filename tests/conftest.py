"""Shared fixtures: tiny random checkpoints (built once per session) and CLI helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURE_NAMES = ["llama", "llama3-rope", "gemma3", "qwen2", "phi4-mini", "gemma3-multimodal", "gemma3-spm"]


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory):
    """Build (once) and return the folder of a tiny checkpoint by name."""
    from slmkit.converter.models.fixtures import build_fixture

    root = tmp_path_factory.mktemp("fixtures")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_fixture(name, root / name)
        return built[name]

    return get


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: int = 600, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `slmkit` entry point as a user would (`input`: what is typed at prompts)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "slmkit.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
