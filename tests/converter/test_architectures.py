"""Per-architecture facts: one shared table, one table per target, covering the same architectures."""

from __future__ import annotations

import pytest

from slmkit.converter.architectures import ARCHITECTURES
from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.gguf.architectures import GGUF_ARCHITECTURES, gguf_architecture
from slmkit.converter.targets.onnx.architectures import GENAI_TYPES


def test_every_architecture_has_a_row_in_each_target_table() -> None:
    assert set(GGUF_ARCHITECTURES) == set(ARCHITECTURES) == set(GENAI_TYPES)


def test_an_architecture_without_a_gguf_row_is_one_clear_error() -> None:
    with pytest.raises(SlmkitError, match="GGUF target does not write mamba") as error:
        gguf_architecture("mamba")
    assert error.value.hint == "Supported: gemma3_text, llama, phi3, qwen2."
