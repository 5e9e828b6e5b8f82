"""Batch routing: the same figures as routing one by one, whatever the shards and the engine;
a killed job resumes without redoing or losing a shard; rows land in Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from slmkit.runtime.backends.base import estimate_request_tokens
from slmkit.runtime.batch.route import RouteTally, ShardRouter, route_files
from slmkit.runtime.data import read_dataset
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.evaluation import evaluate
from slmkit.runtime.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
TIMED = ("latency_ms",)


@pytest.fixture(scope="module")
def requests_file(tmp_path_factory) -> Path:
    """120 labelled lines of the shipped data, plus an unlabelled one and a broken one."""
    path = tmp_path_factory.mktemp("batch") / "requests.jsonl"
    with gzip.open(REPO / "data" / "routing" / "train.jsonl.gz", "rt", encoding="utf-8") as source:
        lines = [next(source) for _ in range(120)]
    lines[40:40] = ['{"prompt": "no label here"}\n', "{broken\n"]
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec_data() -> tuple[dict, str]:
    path = default_spec_path()
    return json.loads(path.read_text(encoding="utf-8")), str(path.parent)


def _untimed(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k not in TIMED}


def test_sharded_figures_equal_routing_one_by_one(requests_file: Path, spec_data) -> None:
    data, base = spec_data
    spec = load_spec(default_spec_path())
    router = ShardRouter(data, base)
    items = read_dataset(requests_file).items
    expected = evaluate([i.tier for i in items], [router.decide(i.request) for i in items], spec,
                        [estimate_request_tokens(i.request) for i in items])
    tally = route_files([str(requests_file)], data, base, engine="local", shard_bytes=9_000, by_source=True)
    assert tally.routing.n == 120 and tally.skipped == 2
    assert _untimed(tally.routing.figures()) == _untimed(expected)
    assert sorted(tally.by_source) == sorted({i.source for i in items})
    assert sum(t.n for t in tally.by_source.values()) == 120
    assert tally.seen_in_training == 120   # the default head was trained on these lines


def test_a_killed_job_resumes_without_redoing_or_losing_shards(requests_file: Path, spec_data, tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    data, base = spec_data
    out = tmp_path / "out"
    first = route_files([str(requests_file)], data, base, str(out), engine="local", shard_bytes=9_000)
    parts = sorted((out / "tallies").glob("part-*.json"))
    assert len(parts) > 4
    # a kill: two shards' tallies never written, one part left half-written
    for tally_file in parts[1:3]:
        tally_file.unlink()
    (out / "parts" / ".part-000001.parquet.tmp").write_bytes(b"half")
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("part-*.parquet") if p.name not in
            {"part-000001.parquet", "part-000002.parquet"}}
    progress: list[int] = []
    again = route_files([str(requests_file)], data, base, str(out), engine="local", shard_bytes=9_000,
                           on_progress=lambda done, total: progress.append(done))
    assert _untimed(again.routing.figures()) == _untimed(first.routing.figures())
    assert progress[-1] == len(parts)
    assert {name: (out / "parts" / name).stat().st_mtime_ns for name in kept} == kept   # finished shards not redone
    assert not list((out / "parts").glob(".*"))
    rows = ds.dataset(out / "parts", format="parquet").to_table()
    assert rows.num_rows == 122 and len(set(rows.column("offset").to_pylist())) == 122
    skipped = [s for s in rows.column("skipped").to_pylist() if s]
    assert sorted(skipped)[0].startswith("no `tier`") and len(skipped) == 2
    assert {"p_simple", "p_medium", "p_complex", "tier", "confidence"} <= set(rows.column_names)


def test_an_output_folder_of_another_job_is_refused(requests_file: Path, spec_data, tmp_path: Path) -> None:
    data, base = spec_data
    out = tmp_path / "out"
    route_files([str(requests_file)], data, base, str(out), engine="local", shard_bytes=50_000)
    with pytest.raises(SlmkitError, match="another job"):
        route_files([str(requests_file)], data, base, str(out), engine="local", shard_bytes=40_000)
    changed = json.loads(json.dumps(data))
    changed["policy"]["routes"][0]["min_confidence"] = 0.1
    with pytest.raises(SlmkitError, match="another job"):
        route_files([str(requests_file)], changed, base, str(out), engine="local", shard_bytes=50_000)


def test_tally_state_round_trips(requests_file: Path, spec_data) -> None:
    data, base = spec_data
    spec = load_spec(default_spec_path())
    tally = route_files([str(requests_file)], data, base, engine="local", by_source=True)
    back = RouteTally.from_state(spec, json.loads(json.dumps(tally.to_state())))
    assert back.routing.figures() == tally.routing.figures() and back.skipped_examples == tally.skipped_examples


def test_ray_data_gives_the_local_figures(requests_file: Path, spec_data, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    data, base = spec_data
    local = route_files([str(requests_file)], data, base, engine="local", shard_bytes=9_000)
    on_ray = route_files([str(requests_file)], data, base, str(tmp_path / "out"), engine="ray", workers=2,
                            shard_bytes=9_000)
    assert _untimed(on_ray.routing.figures()) == _untimed(local.routing.figures())
    assert on_ray.skipped == 2
