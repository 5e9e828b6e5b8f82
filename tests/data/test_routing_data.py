"""slmkit's routing data is package data: found through the installed package, refused clearly when absent."""

from __future__ import annotations

import gzip
import json

import pytest

from slmkit.data import routing_file
from slmkit.runtime.errors import SlmkitError


@pytest.mark.parametrize("name", ["train.jsonl.gz", "authored.jsonl.gz"])
def test_shipped_routing_files_are_labelled_requests(name: str) -> None:
    with gzip.open(routing_file(name), "rt", encoding="utf-8") as lines:
        first = json.loads(next(lines))
    assert first["tier"] in {"simple", "medium", "complex"} and first["source"]


def test_a_missing_file_is_one_clear_error() -> None:
    with pytest.raises(SlmkitError, match="missing from this installation"):
        routing_file("absent.jsonl.gz")
