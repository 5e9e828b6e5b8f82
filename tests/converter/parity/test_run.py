"""The stored reference is read back exactly, a chunk of rows at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.targets.coreml.runner import _exact_in_half
from slmkit.converter.parity.run import NpyRows


def test_rows_read_on_demand_equal_the_saved_array(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(37, 11)).astype(np.float32)
    np.save(tmp_path / "a.npy", values)
    rows = NpyRows(tmp_path / "a.npy")
    assert rows.shape == (37, 11) and rows.dtype == np.float32
    assert np.array_equal(rows[5:19], values[5:19]) and np.array_equal(rows[30:99], values[30:])
    assert rows[40:50].shape == (0, 11)
    with pytest.raises(IndexError):
        rows[::2]


def test_a_3d_or_fortran_array_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        NpyRows(tmp_path / "b.npy")


def test_fp16_is_used_only_when_it_holds_the_logits_exactly() -> None:
    half_values = np.array([[1.5, -np.inf, 65504.0, np.nan]], dtype=np.float32)
    assert _exact_in_half(half_values)
    assert not _exact_in_half(np.array([[1.0001]], dtype=np.float32))


class _Tokenizer:
    """A runner's tokenizer half: whitespace words, with the tokens it knows kept whole."""

    def __init__(self, info, known: list[str], added: list[str] | None = None) -> None:
        self.info, self.known, self.added = info, known, added or []

    def tokenizer_info(self):
        return self.info

    def added_tokens(self) -> list[str]:
        return self.added

    def tokenize(self, text: str) -> list[int]:
        ids = []
        for word in text.split():
            ids.extend([1000 + self.known.index(word)] if word in self.known else [ord(c) for c in word])
        return ids


def test_a_bos_id_neither_side_adds_is_not_a_difference() -> None:
    """Qwen 2.5: `bos_token: null` in the tokenizer, `bos_token_id` in config.json; llama.cpp reports one."""
    from slmkit.converter.parity.run import tokenizer_problems
    from slmkit.runtime.engines.base import TokenizerInfo

    reference, artifact = TokenizerInfo(None, 7, False, None), TokenizerInfo(0, 7, False, None)
    assert tokenizer_problems(reference, artifact, None, None) == []
    adding = TokenizerInfo(1, 7, True, None)
    assert tokenizer_problems(adding, TokenizerInfo(2, 7, True, None), None, None) == ["bos_id: reference 1, artifact 2"]
    assert tokenizer_problems(adding, artifact, None, None) == ["adds_bos: reference True, artifact False"]
    assert tokenizer_problems(reference, TokenizerInfo(None, 8, False, None), None, None) == ["eos_id: reference 7, artifact 8"]


def test_every_added_token_is_tokenized_on_both_sides() -> None:
    from slmkit.converter.parity.run import ADDED_TOKENS_PER_PROBE, added_token_problems
    from slmkit.runtime.engines.base import TokenizerInfo

    info = TokenizerInfo(None, 7, False, None)
    added = [f"<unused{i}>" for i in range(3 * ADDED_TOKENS_PER_PROBE)] + ["<tool_result>", "<tool_call>"]
    reference = _Tokenizer(info, added, added)
    assert added_token_problems(reference, _Tokenizer(info, added)) == (len(added), [])
    checked, problems = added_token_problems(reference, _Tokenizer(info, added[:-2]))  # added after training
    assert checked == len(added) and len(problems) == 1 and problems[0].startswith("added token '<tool_result>'")


def test_built_in_prompts_past_the_context_are_skipped_user_prompts_refused() -> None:
    from slmkit.converter.errors import SlmkitError
    from slmkit.converter.parity.check import fit_context
    from slmkit.converter.parity.prompts import Prompt
    from slmkit.converter.parity.run import PreparedPrompt

    long_builtin = PreparedPrompt(Prompt("long-context", text="x", builtin=True), "x", list(range(900)))
    short = PreparedPrompt(Prompt("chat", text="x", builtin=True), "x", list(range(20)))
    kept, skipped = fit_context([short, long_builtin], 16, 512, "art")
    assert kept == [short] and skipped == ["built-in prompt 'long-context' needs 917 tokens; art holds 512"]
    assert fit_context([short, long_builtin], 16, None, "art") == ([short, long_builtin], [])
    mine = PreparedPrompt(Prompt("mine.txt:3", text="x"), "x", list(range(900)))
    with pytest.raises(SlmkitError, match="Prompt 'mine.txt:3' needs 917 tokens .* art holds 512"):
        fit_context([short, mine], 16, 512, "art")


def test_chat_prompts_are_tokenized_as_apply_chat_template_does(fixture_dir) -> None:
    """A template that writes {{ bos_token }} (Gemma) must not get a second BOS from the tokenizer:
    parity measures the prompt the runtimes send (transformers' apply_chat_template(tokenize=True))."""
    from slmkit.converter.models.hf_tokenizer import HfTokenized
    from slmkit.converter.tokenizer_files import load_tokenizer
    from slmkit.converter.parity.prompts import Prompt
    from slmkit.converter.parity.run import prepare

    reference = HfTokenized()
    reference.tokenizer = load_tokenizer(fixture_dir("gemma3-spm"))
    messages = [{"role": "user", "content": "Capital of France?"}]
    chat, plain = prepare(reference, [Prompt("chat", messages=messages), Prompt("plain", text="Capital of France?")])
    expected = reference.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    assert chat.chat and chat.ids == list(expected) and chat.ids[:2] != [reference.tokenizer.bos_token_id] * 2
    assert not plain.chat and plain.ids[0] == reference.tokenizer.bos_token_id  # raw text: the tokenizer adds BOS
