"""Pre-tokenizer identification: known structures map to llama.cpp names, unknown ones are refused."""

from __future__ import annotations

import pytest

from slmkit.converter import pretokenizers
from slmkit.converter.errors import SlmkitError


@pytest.mark.parametrize("name", list(pretokenizers.KNOWN_PRETOKENIZERS))
def test_round_trip(name: str) -> None:
    assert pretokenizers.identify({"pre_tokenizer": pretokenizers.pre_tokenizer_json(name)}) == name


def test_options_that_do_not_change_the_split_are_ignored() -> None:
    pre = dict(pretokenizers.pre_tokenizer_json("gpt-2"), trim_offsets=False)
    assert pretokenizers.identify({"pre_tokenizer": pre}) == "gpt-2"


def test_unknown_structure_is_refused() -> None:
    with pytest.raises(SlmkitError, match="not one llama.cpp is known to implement"):
        pretokenizers.identify({"pre_tokenizer": {"type": "Whitespace"}})


def test_missing_pre_tokenizer_is_refused() -> None:
    with pytest.raises(SlmkitError):
        pretokenizers.identify({"pre_tokenizer": None})
