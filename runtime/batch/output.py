"""A batch job's output folder: one Parquet part and one tally file per shard, written so a part
is either complete or absent.

    OUT/job.json                   what the job is (inputs and their versions, spec, shard plan)
    OUT/parts/part-000042.parquet  the shard's rows (the folder is a Parquet dataset: pyarrow, pandas, DuckDB)
    OUT/tallies/part-000042.json   the shard's counts: its presence marks the shard done

Both files are written under a temporary name starting with "." (which Parquet readers skip) and
renamed; the tally is renamed last, so a killed worker leaves at most a part that the resumed job
overwrites.
"""

from __future__ import annotations

import json
import posixpath

from slmkit.runtime.errors import SlmkitError


def _filesystem(url: str):
    import fsspec

    return fsspec.core.url_to_fs(url)


class OutputFolder:
    """OUT, local or any fsspec URL."""

    def __init__(self, url: str) -> None:
        from slmkit.runtime.batch.job import ray_available

        if not ray_available():
            raise SlmkitError("Parquet output needs the batch extra: pip install \"slmkit[batch]\"",
                              hint="Or leave out --output: the figures are printed and --report writes them as JSON.")
        self.url = url
        self.fs, self.path = _filesystem(url)

    def _join(self, *names: str) -> str:
        return posixpath.join(self.path, *names)

    def part(self, index: int) -> str:
        return self._join("parts", f"part-{index:06d}.parquet")

    def tally(self, index: int) -> str:
        return self._join("tallies", f"part-{index:06d}.json")

    def prepare(self, job: dict) -> None:
        """Start `job` here, or resume it when job.json describes the same job.

        Raises SlmkitError when OUT holds a different job (its inputs, their versions or the spec changed).
        """
        manifest = self._join("job.json")
        if self.fs.exists(manifest):
            with self.fs.open(manifest, "r", encoding="utf-8") as handle:
                try:
                    previous = json.load(handle)
                except json.JSONDecodeError:
                    previous = None
            if previous != job:
                differ = sorted(k for k in set(job) | set(previous if isinstance(previous, dict) else {})
                                if not isinstance(previous, dict) or previous.get(k) != job.get(k))
                raise SlmkitError(f"{self.url} holds another job's output ({', '.join(differ)} changed), so it cannot "
                                  f"be resumed.", hint="Write to a new --output folder, or delete this one to start over.")
            return
        self.fs.makedirs(self._join("parts"), exist_ok=True)
        self.fs.makedirs(self._join("tallies"), exist_ok=True)
        self._write_text(manifest, json.dumps(job, indent=2) + "\n")

    def done(self) -> dict[int, dict]:
        """Shard index -> tally state of every shard already finished."""
        found = {}
        for name in self.fs.glob(self._join("tallies", "part-*.json")):
            index = int(posixpath.basename(name)[len("part-"):-len(".json")])
            with self.fs.open(name, "r", encoding="utf-8") as handle:
                try:
                    found[index] = json.load(handle)
                except json.JSONDecodeError:  # cannot happen through commit(); a hand-edited file is redone
                    continue
        return found

    def _write_text(self, path: str, text: str) -> None:
        temporary = posixpath.join(posixpath.dirname(path), "." + posixpath.basename(path) + ".tmp")
        with self.fs.open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        self.fs.mv(temporary, path)

    def commit(self, index: int, rows: PartWriter | None, state: dict) -> None:
        """Write the shard's part (when it has a writer), then its tally: the shard is done."""
        if rows is not None:
            import pyarrow.parquet as pq

            final = self.part(index)
            temporary = posixpath.join(posixpath.dirname(final), "." + posixpath.basename(final) + ".tmp")
            with self.fs.open(temporary, "wb") as handle:
                pq.write_table(rows.table(), handle, compression="zstd")
            self.fs.mv(temporary, final)
        self._write_text(self.tally(index), json.dumps(state))

    def keep(self, name: str, text: str) -> str:
        """OUT/`name` holding `text`, written (renamed into place) only when absent, so a content-named file
        keeps its version and a job reading it can be resumed; returns its URL."""
        path = self._join(*name.split("/"))
        if not self.fs.exists(path):
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
            self._write_text(path, text)
        protocol = self.url.split("://", 1)[0] + "://" if "://" in self.url else ""
        return path if not protocol or path.startswith(protocol) else protocol + path

    def write_report(self, name: str, text: str) -> str:
        """OUT/`name`, renamed into place; returns its URL."""
        path = self._join(name)
        self._write_text(path, text)
        return path


class PartWriter:
    """One shard's rows, held until the shard ends (a shard is ~SHARD_BYTES of input)."""

    def __init__(self, schema) -> None:
        self.schema = schema
        self.rows: list[dict] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def table(self):
        """The rows as a pyarrow Table of `schema`. Raises SlmkitError for a row that does not fit it."""
        import pyarrow as pa

        try:
            return pa.Table.from_pylist(self.rows, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SlmkitError(f"A row does not fit the output schema: {exc}") from None
