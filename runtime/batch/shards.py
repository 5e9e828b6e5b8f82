"""Input splits: where each shard of a batch job starts and stops, and how its records are read.

The rule for uncompressed JSONL is Hadoop's input split: a shard is a byte range [start, stop),
and it owns every line whose first byte lies in that range (a line crossing `stop` is read to its
end; a shard starting mid-line skips to the next line). Every line lands in exactly one shard and
the plan needs only the file's size, so a 1 GB log on object storage is never scanned by the driver.
Compressed files cannot be entered mid-stream: each is one shard (as in Spark and Hadoop).
Parquet files split at row groups.

Paths are local paths or any fsspec URL (s3://, gs://, http://, memory://; the filesystem's own
package, e.g. s3fs, must be installed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from slmkit.runtime.errors import SlmkitError

SHARD_BYTES = 4 * 1024 * 1024   # ~10K logged requests of ~400 bytes: what a killed run can lose per worker
KINDS = {".jsonl": "jsonl", ".jsonl.gz": "jsonl.gz", ".parquet": "parquet"}


@dataclass(frozen=True)
class Shard:
    """One unit of work. `start`/`stop`: byte offsets (jsonl), row group index and the next one
    (parquet), 0 and -1 (jsonl.gz, the whole file)."""

    index: int
    url: str
    kind: str
    start: int
    stop: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InputFile:
    """A planned input and what identifies its content (a resumed job refuses a changed input)."""

    url: str
    kind: str
    size: int
    version: str   # modification time or ETag, as the filesystem reports it ("" when it reports none)


def input_kind(url: str) -> str:
    """'jsonl', 'jsonl.gz' or 'parquet' from the name. Raises SlmkitError for any other name."""
    for suffix, kind in sorted(KINDS.items(), key=lambda item: -len(item[0])):
        if url.endswith(suffix):
            return kind
    raise SlmkitError(f"{url}: batch inputs are .jsonl, .jsonl.gz or .parquet files.")


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise SlmkitError(f"{url}: no filesystem for this URL ({exc}).",
                          hint="Install the fsspec implementation its scheme needs, e.g. s3fs for s3://.") from None


def describe(url: str) -> InputFile:
    """Size and version of `url`. Raises SlmkitError when it does not exist or is not a file."""
    kind = input_kind(url)
    fs, path = _filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise SlmkitError(f"No data file at {url}.") from None
    except OSError as exc:
        raise SlmkitError(f"Cannot read {url}: {exc}") from None
    if info.get("type") != "file":
        raise SlmkitError(f"{url} is not a file.")
    version = info.get("mtime") or info.get("LastModified") or info.get("ETag") or info.get("created") or ""
    return InputFile(url, kind, int(info.get("size") or 0), str(version))


def describe_all(urls: list[str]) -> list[InputFile]:
    """Every input of `urls`, a pattern with * ? or [ ] expanded to its matches in name order.
    Raises SlmkitError for a pattern matching nothing, or as `describe`."""
    found = []
    for url in urls:
        if not any(char in url for char in "*?["):
            found.append(describe(url))
            continue
        fs, path = _filesystem(url)
        matches = sorted(fs.glob(path))
        if not matches:
            raise SlmkitError(f"No data file matches {url}.")
        protocol = url.split("://", 1)[0] + "://" if "://" in url else ""
        found.extend(describe(protocol + match if protocol and not match.startswith(protocol) else match)
                     for match in matches)
    return found


def plan(inputs: list[InputFile], shard_bytes: int = SHARD_BYTES) -> list[Shard]:
    """Shards of every input, numbered in input order. Raises SlmkitError for an unreadable Parquet file."""
    if shard_bytes < 1:
        raise SlmkitError("The shard size must be at least one byte.")
    shards: list[Shard] = []
    for item in inputs:
        if item.kind == "jsonl":
            for start in range(0, max(item.size, 1), shard_bytes):
                shards.append(Shard(len(shards), item.url, item.kind, start, min(start + shard_bytes, item.size)))
        elif item.kind == "jsonl.gz":
            shards.append(Shard(len(shards), item.url, item.kind, 0, -1))
        else:
            for group in range(_row_groups(item.url)):
                shards.append(Shard(len(shards), item.url, item.kind, group, group + 1))
    return shards


def _row_groups(url: str) -> int:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SlmkitError(f"{url}: reading Parquet needs the batch extra: pip install \"slmkit[batch]\"") from None

    fs, path = _filesystem(url)
    try:
        with fs.open(path, "rb") as handle:
            return pq.ParquetFile(handle).num_row_groups
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError or ValueError for a file that is not Parquet
        raise SlmkitError(f"{url} is not a readable Parquet file ({exc}).") from None


# What read() yields per line or row: its position (byte offset of the line in the uncompressed file,
# or the row number in a Parquet file) and the decoded JSON value, or the reason it could not be decoded.
Record = tuple[int, object | None, str | None]


def read(shard: Shard) -> Iterator[Record]:
    """The records `shard` owns, in file order. Raises SlmkitError when the file cannot be read."""
    fs, path = _filesystem(shard.url)
    try:
        if shard.kind == "parquet":
            yield from _parquet_rows(fs, path, shard)
            return
        with fs.open(path, "rb", compression="gzip" if shard.kind == "jsonl.gz" else None) as handle:
            yield from _jsonl_lines(handle, shard)
    except (OSError, EOFError) as exc:
        raise SlmkitError(f"Cannot read {shard.url}: {exc}") from None


def _jsonl_lines(handle, shard: Shard) -> Iterator[Record]:
    position = shard.start
    if shard.start > 0:
        handle.seek(shard.start - 1)
        position = shard.start - 1 + len(handle.readline())   # the rest of a line an earlier shard owns
    while shard.stop < 0 or position < shard.stop:
        line = handle.readline()
        if not line:
            return
        offset, position = position, position + len(line)
        if not line.strip():
            continue
        try:
            yield offset, json.loads(line.decode("utf-8")), None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield offset, None, f"not JSON ({exc})"


def _parquet_rows(fs, path: str, shard: Shard) -> Iterator[Record]:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        first = sum(parquet.metadata.row_group(g).num_rows for g in range(shard.start))
        for number, row in enumerate(parquet.read_row_group(shard.start).to_pylist(), first):
            yield number, {key: value for key, value in row.items() if value is not None}, None
