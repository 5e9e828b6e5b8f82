"""`slmkit route` and `slmkit router train|eval|schema` as a user runs them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT / "data" / "routing" / "train.jsonl.gz"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every 8th request of the shipped training data (560 rows, all three tiers)."""
    with gzip.open(SHARED_DATA, "rt", encoding="utf-8") as handle:
        rows = [line for i, line in enumerate(handle) if i % 8 == 0]
    path = tmp_path_factory.mktemp("routing") / "small.jsonl"
    path.write_text("".join(rows) + "this line is not json\n", encoding="utf-8")
    return path


def test_route_prints_answer_and_trace_as_json() -> None:
    result = run_cli("route", "Write a 2,000-word short story about a lighthouse keeper who finds a map, "
                     "with three plot twists and an unreliable narrator.", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tier"] == "frontier" and data["trace"]["router"]["label"] == "complex"
    assert data["trace"]["steps"][0]["simulated"] is True and data["error"] is None


def test_route_prints_the_answer_verbatim() -> None:
    """Model text is not Rich markup: brackets (the simulator's "[simulated answer ...]", arr[i]) survive."""
    result = run_cli("route", "Write a 2,000-word short story about arr[i] in [bold]Python[/bold], with three plot twists "
                     "and an unreliable narrator.")
    assert result.returncode == 0, result.stderr
    assert "[simulated answer from tier" in " ".join(result.stdout.split())


def test_route_with_a_broken_spec_is_one_clear_error(tmp_path: Path) -> None:
    spec = tmp_path / "routing.json"
    spec.write_text(json.dumps({"version": 1, "router": {"method": "classifier"}}), encoding="utf-8")
    result = run_cli("route", "hi", "--spec", str(spec))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is not a valid routing spec" in result.stderr and "weights" in result.stderr


def test_train_then_eval_on_the_holdout(tmp_path: Path, small_data: Path) -> None:
    out = tmp_path / "router"
    result = run_cli("router", "train", "--data", str(small_data), "--output", str(out), "--holdout", "0.25", "--folds", "3",
                     "--encoder", "none", "--target", "tier")  # 3 classes fit fast; category heads: tests/converter/routing
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "line 561" in result.stderr
    report = json.loads((out / "train-report.json").read_text(encoding="utf-8"))
    assert report["examples"] + report["held_out"] == 560 and report["held_out"] == 140
    assert set(report["cross_validation"]) == {"leave_one_source_out", "unseen_templates", "stratified"}
    shipped = json.loads((out / "routing.json").read_text(encoding="utf-8"))["router"]["temperature"]
    assert shipped == report["cross_validation"]["stratified"]["temperature"] == report["temperature"]
    assert report["cross_validation"]["leave_one_source_out"]["temperature"] == shipped  # figures at the shipped one
    assert report["cross_validation"]["stratified"]["accuracy"] > 0.8
    held = [json.loads(line) for line in (out / "holdout.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(held) == 140 and {r["tier"] for r in held} == {"simple", "medium", "complex"}
    result = run_cli("router", "eval", "--data", str(out / "holdout.jsonl"), "--spec", str(out / "routing.json"),
                     "--report", str(tmp_path / "eval.json"), "--by-source")
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert set(figures["by_source"]) == {r["source"] for r in held} and "Per source" in result.stdout
    assert sum(group["n"] for group in figures["by_source"].values()) == 140
    for key in ("accuracy", "macro_f1", "confusion", "simple_kept_on_device", "complex_on_device", "threshold_sweep"):
        assert key in figures
    assert figures["n"] == 140 and figures["accuracy"] > 0.75
    assert sum(sum(row.values()) for row in figures["confusion"].values()) == 140
    assert [row["simple_min_confidence"] for row in figures["threshold_sweep"]][:2] == [0.0, 0.5]


def test_cv_by_source_reports_every_held_out_source(tmp_path: Path, small_data: Path) -> None:
    report = tmp_path / "cv" / "loso.json"
    result = run_cli("router", "cv", "--data", str(small_data), "--by", "source", "--encoder", "none", "--target", "tier",
                     "--report", str(report))  # tier: 3 classes fit fast; the category head is trained in the test above
    assert result.returncode == 0, result.stderr
    figures = json.loads(report.read_text(encoding="utf-8"))
    sources = {json.loads(line)["source"] for line in small_data.read_text(encoding="utf-8").splitlines()[:-1]}
    assert figures["split"] == "leave_one_source_out" and set(figures["by_group"]) == sources
    assert sum(group["n"] for group in figures["by_group"].values()) == figures["n"] == 560
    assert "Each source, routed by a head trained without it" in result.stdout
    bad = run_cli("router", "cv", "--data", str(small_data), "--by", "sources")
    assert bad.returncode == 1 and "No cross-validation split named 'sources'" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_needs_data_and_refuses_unknown_methods(tmp_path: Path, small_data: Path) -> None:
    result = run_cli("router", "eval", "--data", str(tmp_path / "none.jsonl"))
    assert result.returncode == 1 and "No data file" in result.stderr
    result = run_cli("router", "eval", "--data", str(small_data), "--method", "magic")
    assert result.returncode == 1 and "Unknown router method magic" in result.stderr


def test_eval_writes_parquet_rows_and_the_report_and_resumes(tmp_path: Path, small_data: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "eval"
    result = run_cli("router", "eval", "--data", str(small_data), "--output", str(out), "--engine", "local")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["n"] == 560 and report["skipped_lines"]["count"] == 1
    rows = pq.read_table(out / "parts")
    assert rows.num_rows == 561 and rows.column("label").null_count == 1
    again = run_cli("router", "eval", "--data", str(small_data), "--output", str(out), "--engine", "local")
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in json.loads((out / "report.json").read_text())
            .items() if k != "latency_ms"} == {k: v for k, v in report.items() if k != "latency_ms"}


def test_eval_sample_draws_n_seeded_and_counts_the_lines_it_skipped(tmp_path: Path, small_data: Path) -> None:
    """--sample N --seed S: N labelled requests drawn at random (the same draw as simulate's), then --limit; the
    line the selection skipped is counted in the report like any skipped line."""
    reports = []
    for seed, name in ((7, "a"), (7, "b"), (8, "c")):
        result = run_cli("router", "eval", "--data", str(small_data), "--sample", "50", "--seed", str(seed),
                         "--engine", "local", "--report", str(tmp_path / f"{name}.json"))
        assert result.returncode == 0, result.stderr
        reports.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert [r["n"] for r in reports] == [50, 50, 50] and all(r["skipped_lines"]["count"] == 1 for r in reports)
    untimed = [{k: v for k, v in r.items() if k != "latency_ms"} for r in reports]
    assert untimed[0] == untimed[1] and untimed[0]["confusion"] != untimed[2]["confusion"]
    assert reports[0]["selection"] == {"from": [str(small_data)], "sample": 50, "seed": 7, "limit": None,
                                       "requests": 50, "file": None}
    limited = run_cli("router", "eval", "--data", str(small_data), "--sample", "50", "--seed", "7", "--limit", "20",
                      "--engine", "local", "--report", str(tmp_path / "d.json"))
    assert limited.returncode == 0 and json.loads((tmp_path / "d.json").read_text())["n"] == 20
    alone = run_cli("router", "eval", "--data", str(small_data), "--seed", "7")
    assert alone.returncode == 1 and "--seed only chooses which lines --sample draws" in alone.stderr


def test_a_sampled_eval_with_output_keeps_its_selection_and_resumes(tmp_path: Path, small_data: Path) -> None:
    """The rows of a --sample job point at a selection file that stays in OUTPUT; the same command resumes."""
    import pyarrow.parquet as pq

    out = tmp_path / "eval"
    args = ["router", "eval", "--data", str(small_data), "--sample", "40", "--seed", "3", "--output", str(out), "--engine", "local"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads((out / "report.json").read_text())
    kept = Path(report["selection"]["file"])
    assert kept.parent == out / "selections" and len(kept.read_text().splitlines()) == 40
    assert set(pq.read_table(out / "parts").column("file").to_pylist()) == {str(kept)}
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert {k: v for k, v in json.loads((out / "report.json").read_text()).items() if k != "latency_ms"} == \
        {k: v for k, v in report.items() if k != "latency_ms"}
    other = run_cli(*args[:-2], "--seed", "4", "--engine", "local")
    assert other.returncode == 1 and "holds another job's output" in other.stderr


@pytest.mark.parametrize("args, message", [
    (["--engine", "spark"], "Unknown engine spark"),
    (["--engine", "local", "--ray-address", "10.0.0.1:6379"], "cannot be combined with --engine local"),
    (["--workers", "0"], "Invalid value for '--workers'"),
])
def test_eval_refuses_bad_batch_options(small_data: Path, args: list[str], message: str) -> None:
    result = run_cli("router", "eval", "--data", str(small_data), *args)
    assert result.returncode in (1, 2) and message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr


def test_schema_prints_the_committed_schema() -> None:
    result = run_cli("router", "schema")
    assert result.returncode == 0
    committed = json.loads((ROOT / "runtime" / "schema" / "routing.schema.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == committed


@pytest.mark.slow
def test_probe_head_trains_on_the_router_model_and_routes(tmp_path: Path) -> None:
    """A probe on SmolLM2's hidden state: trained from 60 requests, loaded by the pipeline, model-checked."""
    with gzip.open(SHARED_DATA, "rt", encoding="utf-8") as handle:
        rows = [line for i, line in enumerate(handle) if i % 75 == 0]
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(rows), encoding="utf-8")
    out = tmp_path / "probe"
    result = run_cli("router", "train", "--method", "probe", "--data", str(data), "--output", str(out), "--folds", "3")
    assert result.returncode == 0, result.stderr
    spec = json.loads((out / "routing.json").read_text(encoding="utf-8"))
    assert spec["router"]["method"] == "probe" and spec["router"]["tier"] == "on-device"
    head = json.loads((out / "router-head.json").read_text(encoding="utf-8"))
    assert head["features"] == "probe-mean-v1" and head["shape"] == [576, 3]
    assert head["info"]["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    result = run_cli("router", "eval", "--data", str(data), "--spec", str(out / "routing.json"), "--report", str(tmp_path / "e.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] > 0.5
    head["info"]["model_bytes"] += 1
    (out / "router-head.json").write_text(json.dumps(head), encoding="utf-8")
    result = run_cli("route", "hi", "--spec", str(out / "routing.json"))
    assert result.returncode == 1 and "was trained on SmolLM2-135M-Instruct.Q4_1.gguf" in result.stderr


@pytest.mark.slow
def test_label_logits_calibration_on_the_router_model(tmp_path: Path) -> None:
    """SmolLM2's label scores for 60 requests; bias + temperature fitted and written to the spec."""
    with gzip.open(SHARED_DATA, "rt", encoding="utf-8") as handle:
        rows = [line for i, line in enumerate(handle) if i % 75 == 0]
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(rows), encoding="utf-8")
    out = tmp_path / "ll"
    result = run_cli("router", "train", "--method", "label_logits", "--data", str(data), "--output", str(out), "--folds", "3")
    assert result.returncode == 0, result.stderr
    router = json.loads((out / "routing.json").read_text(encoding="utf-8"))["router"]
    assert router["method"] == "label_logits" and set(router["bias"]) == {"simple", "medium", "complex"}
    report = json.loads((out / "train-report.json").read_text(encoding="utf-8"))
    assert {"uncalibrated", "stratified"} <= set(report["cross_validation"])
    result = run_cli("route", "Classify the sentiment: great phone.", "--spec", str(out / "routing.json"), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["trace"]["router"]["method"] == "label_logits"
