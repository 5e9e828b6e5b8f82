"""Input splits: every line in exactly one shard, whatever the shard size; gz and Parquet read whole."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmkit.runtime.batch.shards import describe, input_kind, plan, read
from slmkit.runtime.errors import SlmkitError


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes(b"".join(line.encode("utf-8") + b"\n" for line in lines))


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=30),
                      min_size=0, max_size=40),
       shard_bytes=st.integers(min_value=1, max_value=200))
def test_every_line_lands_in_exactly_one_shard(tmp_path_factory, texts: list[str], shard_bytes: int) -> None:
    path = tmp_path_factory.mktemp("split") / "r.jsonl"
    lines = [json.dumps({"prompt": text, "n": i}, ensure_ascii=False) for i, text in enumerate(texts)]
    _write_lines(path, lines)
    shards = plan([describe(str(path))], shard_bytes)
    got = [record["n"] for shard in shards for _, record, _ in read(shard)]
    assert got == list(range(len(texts)))
    data = path.read_bytes()
    offsets = [offset for shard in shards for offset, _, _ in read(shard)]
    assert all(offset == 0 or data[offset - 1:offset] == b"\n" for offset in offsets)  # offsets start lines


def test_bad_lines_are_named_not_fatal_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n\nnot json\n\xff\xfe\n{"prompt": "b"}')   # no final newline
    records = [record for shard in plan([describe(str(path))], 7) for record in read(shard)]
    assert [r[1] for r in records if r[2] is None] == [{"prompt": "a"}, {"prompt": "b"}]
    assert [r[2].split(" (")[0] for r in records if r[2]] == ["not JSON", "not JSON"]


def test_gzip_is_one_shard_and_parquet_splits_at_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    gz = tmp_path / "r.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(50))
    assert len(plan([describe(str(gz))], 16)) == 1
    assert [r[1]["prompt"] for s in plan([describe(str(gz))], 16) for r in read(s)] == [f"p{i}" for i in range(50)]
    parquet = tmp_path / "r.parquet"
    pq.write_table(pa.table({"prompt": [f"q{i}" for i in range(25)], "tier": ["simple"] * 25}), parquet, row_group_size=10)
    shards = plan([describe(str(parquet))])
    assert len(shards) == 3
    rows = [r for s in shards for r in read(s)]
    assert [r[0] for r in rows] == list(range(25)) and rows[24][1] == {"prompt": "q24", "tier": "simple"}


def test_fsspec_urls_are_read_like_files() -> None:
    import fsspec

    with fsspec.open("memory://logs/r.jsonl", "wb") as handle:
        handle.write(b"".join(json.dumps({"prompt": f"m{i}"}).encode() + b"\n" for i in range(30)))
    shards = plan([describe("memory://logs/r.jsonl")], 64)
    assert len(shards) > 3 and [r[1]["prompt"] for s in shards for r in read(s)] == [f"m{i}" for i in range(30)]


@pytest.mark.parametrize("url, message", [("x.csv", "batch inputs are"), ("/nonexistent/r.jsonl", "No data file")])
def test_refused_inputs_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(SlmkitError, match=message):
        describe(url)


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "r.parquet"
    bad.write_text("{}")
    with pytest.raises(SlmkitError, match="not a readable Parquet"):
        plan([describe(str(bad))])
    assert input_kind("a.jsonl.gz") == "jsonl.gz"


def test_patterns_expand_in_name_order(tmp_path: Path) -> None:
    import fsspec

    from slmkit.runtime.batch.shards import describe_all

    for name in ("b", "a"):
        (tmp_path / f"{name}.jsonl").write_text('{"prompt": "x"}\n')
        with fsspec.open(f"memory://globbed/{name}.jsonl", "wb") as handle:
            handle.write(b'{"prompt": "y"}\n')
    assert [Path(i.url).name for i in describe_all([str(tmp_path / "*.jsonl")])] == ["a.jsonl", "b.jsonl"]
    assert [i.url for i in describe_all(["memory://globbed/*.jsonl"])] == ["memory:///globbed/a.jsonl", "memory:///globbed/b.jsonl"]
    with pytest.raises(SlmkitError, match="No data file matches"):
        describe_all([str(tmp_path / "*.parquet")])
