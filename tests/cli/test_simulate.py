"""`slmkit simulate`, `cost` and `serve` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.cli.test_errors import assert_clean_failure
from tests.runtime.test_server import _free_port


def test_cost_seed_reproduces_the_seed_table() -> None:
    result = run_cli("cost", "--prices", "seed")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for figure in ("$4,500", "$135,000", "$885.00", "$26,550", "80.3 %"):
        assert figure in text
    table = json.loads(run_cli("cost", "--prices", "seed", "--json").stdout)
    assert table["routed"]["usd_per_day"] == 885.0


def test_cost_bad_inputs() -> None:
    assert_clean_failure(run_cli("cost", "--mix", "70/20"), "gives 2 shares")
    assert_clean_failure(run_cli("cost", "--prices", "nope"), "Unknown price preset or file 'nope'")


def _workload(tmp_path: Path) -> Path:
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join([
        json.dumps({"prompt": "Classify the sentiment: I love it.", "tier": "simple"}),
        "this line is not JSON",
        json.dumps({"messages": [{"role": "user", "content": "Prove that there are infinitely many primes, "
                                  "then generalise the argument to arithmetic progressions."}]}),
        json.dumps({"prompt": "Summarize the attached quarterly report in five bullet points.", "tier": "medium"}),
    ]) + "\n")
    return path


def test_router_only_simulation_writes_both_reports(tmp_path: Path) -> None:
    result = run_cli("simulate", "--workload", str(_workload(tmp_path)), "--device", "raspberry-pi-5", "--router-only",
                     "--report", str(tmp_path / "r"), "--requests-per-day", "50000")
    assert result.returncode == 0, result.stderr
    stderr = "".join(result.stderr.split())   # rich wraps long paths anywhere
    assert "w.jsonlbyte67:notJSON(Expectingvalue" in stderr
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert summary["n"] == 3 and summary["mode"] == "router-only" and summary["skipped_lines"]["count"] == 1
    assert summary["device"]["name"] == "raspberry-pi-5" and summary["predictions"]["on-device"]["fits"]
    assert summary["routing"]["n"] == 2 and summary["cost"]["requests_per_day"] == 50000
    assert (tmp_path / "r" / "report.html").read_text().count("<svg") == 4
    assert "Raspberry Pi 5" in result.stdout and "saved" in result.stdout


def _logs(tmp_path: Path, n: int = 400) -> Path:
    """Logged chat requests (OpenAI proxy-log shape) in Parquet, two row groups (two shards); the
    even ones labelled: sentiment requests simple, proofs complex."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds = [("Classify the sentiment of this review: {}", "simple"), ("Translate to French: {}", None),
             ("Prove that the sum of the first {} odd numbers is a square, then generalise it.", "complex"),
             ("Write a migration plan for {} services from a monolith, with risks and rollback.", None)]
    table = pa.Table.from_pylist([{"id": f"r{i}", "request": {"messages": [{"role": "user", "content": text.format(i)}]},
                                   "tier": label} for i in range(n) for text, label in [kinds[i % 4]]])
    path = tmp_path / "logs.parquet"
    pq.write_table(table, path, row_group_size=n // 2)
    return path


def test_router_only_is_a_resumable_batch_job_with_the_same_figures_on_ray(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    logs = _logs(tmp_path)
    base = ["simulate", "--workload", str(logs), "--router-only", "--device", "pixel-8"]
    local = run_cli(*base, "--engine", "local", "--output", str(tmp_path / "rows"), "--report", str(tmp_path / "a"))
    assert local.returncode == 0, local.stderr
    summary = json.loads((tmp_path / "a" / "report.json").read_text())
    assert summary["n"] == 400 and summary["routing"]["n"] == 200 and summary["skipped_lines"] == {"count": 0, "lines": []}
    rows = pq.read_table(tmp_path / "rows" / "parts")
    assert rows.num_rows == 400 and rows.column("cost_usd").null_count == 0
    assert sum(rows.column("cost_usd").to_pylist()) / 400 * 10_000 == pytest.approx(summary["cost"]["usd_per_day"])
    assert len(list((tmp_path / "rows" / "tallies").glob("part-*.json"))) == 2
    (tmp_path / "rows" / "tallies" / "part-000001.json").unlink()   # killed before the second shard committed
    resumed = run_cli(*base, "--engine", "local", "--output", str(tmp_path / "rows"), "--report", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    on_ray = run_cli(*base, "--engine", "ray", "--workers", "2", "--report", str(tmp_path / "c"))
    assert on_ray.returncode == 0, on_ray.stderr

    def untimed(folder: str) -> dict:
        report = json.loads((tmp_path / folder / "report.json").read_text())
        return {k: report[k] for k in ("n", "tier_mix", "routing", "cost", "threshold_sweep", "kept_on_device")}

    assert untimed("a") == untimed("b") == untimed("c")
    assert summary["tier_mix"]["routed"]["on-device"] > 0.2 and summary["tier_mix"]["routed"]["frontier"] > 0.2


@pytest.mark.parametrize("args, message", [
    (["--output", "rows"], "add --router-only"),
    (["--router-only", "--engine", "spark"], "Unknown engine spark"),
    (["--router-only", "--workload", "s3x://bucket/*.jsonl"], "no filesystem"),
])
def test_simulate_refuses_bad_batch_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("simulate", "--workload", str(_workload(tmp_path)), *args, "--report", str(tmp_path / "r"))
    assert_clean_failure(result, message)
    assert not (tmp_path / "r").exists() and not (tmp_path / "rows").exists()


def test_simulate_bad_inputs(tmp_path: Path) -> None:
    workload = _workload(tmp_path)
    assert_clean_failure(run_cli("simulate", "--workload", str(workload), "--device", "iphone15"),
                         "Unknown device 'iphone15'", "Did you mean", "iphone-15-pro")
    assert_clean_failure(run_cli("simulate", "--workload", str(tmp_path / "none.jsonl")), "No data file")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n[1]\n")
    assert_clean_failure(run_cli("simulate", "--workload", str(garbage), "--router-only"),
                         "holds no usable requests", "byte 0: not JSON")
    small = tmp_path / "small.yaml"
    small.write_text("devices:\n  feature-phone:\n    label: Feature phone\n    kind: phone\n    peak_bandwidth_gbs: 4\n"
                     "    bandwidth_fraction: 0.5\n    peak_gflops: 10\n    compute_fraction: 0.5\n    ram_gb: 0.5\n"
                     "    usable_ram_gb: 0.2\n    sustained_factor: 0.5\n    network_rtt_ms: 200\n"
                     "    sources: [https://example.org/feature-phone]\n")
    result = run_cli("simulate", "--workload", str(workload), "--devices", str(small), "--device", "feature-phone",
                     "--router-only", "--report", str(tmp_path / "r"))
    assert_clean_failure(result, "Tier 'on-device'", "needs about 0.3", "Feature phone gives one app about 0.2 GB")
    assert not (tmp_path / "r").exists()


def test_serve_answers_openai_requests_until_stopped(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "slmkit.cli", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
                time.sleep(0.2)
        assert [m["id"] for m in models["data"]] == ["auto", "on-device", "mid", "frontier"]
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                           json={"model": "frontier", "messages": [{"role": "user", "content": "Plan a migration."}]})
        assert reply.status_code == 200 and "simulated answer from tier 'frontier'" in reply.json()["choices"][0]["message"]["content"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_unreachable_endpoint_falls_back_and_is_reported(tmp_path: Path) -> None:
    """Every request goes to a frontier tier whose endpoint refuses connections: the mid tier answers."""
    from slmkit.runtime.default import default_spec_path

    spec = json.loads(default_spec_path().read_text(encoding="utf-8"))
    spec["router"]["weights"] = str(default_spec_path().parent / spec["router"]["weights"])
    spec["router"]["encoder"] = str(default_spec_path().parent / spec["router"]["encoder"])
    for route in spec["policy"]["routes"]:
        route["tier"] = "frontier"
    spec["policy"].update(low_confidence_tier="frontier", unparsed_tier="frontier")
    frontier = next(t for t in spec["tiers"] if t["name"] == "frontier")
    frontier.update(backend="openai", model="gpt-x", base_url=f"http://127.0.0.1:{_free_port()}/v1", simulated=None,
                    timeout_s=5)
    (tmp_path / "routing.json").write_text(json.dumps(spec))
    result = run_cli("simulate", "--spec", str(tmp_path / "routing.json"), "--workload", str(_workload(tmp_path)),
                     "--report", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    stderr = "".join(result.stderr.split())  # rich wraps long lines anywhere
    assert "tierfrontierfailed3time(s)" in stderr and "cannotreach127.0.0.1:" in stderr
    summary = json.loads((tmp_path / "r" / "report.json").read_text())
    assert summary["fallback_rate"] == 1.0 and summary["tier_mix"]["final"]["mid"] == 1.0


def test_shadow_report_from_records_and_serve_refuses_an_unknown_shadow_tier(tmp_path: Path) -> None:
    log = tmp_path / "shadow"
    log.mkdir()
    served = {"tier": "frontier", "ok": True, "error": None, "input_tokens": 1000, "output_tokens": 200,
              "cost_usd": 0.01, "latency_ms": 900.0, "text": "an answer"}
    records = [{"version": 1, "time": f"2026-12-06T10:00:0{i}+00:00", "id": f"r{i}",
                "messages": [{"role": "user", "content": f"request {i}"}], "served": served,
                "router": {"label": "simple" if i < 3 else "complex", "confidence": 0.9, "latency_ms": 1.5},
                "routed_tier": "on-device" if i < 3 else "frontier", "on_device": None, "unrecorded_before": 0}
               for i in range(4)]
    broken = [records[0] | {"routed_tier": "[/oops]"}] + [records[0] | {"id": f"x{i}", "version": 2} for i in range(6)]
    (log / "shadow-2026-12-06.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records + broken), encoding="utf-8")
    result = run_cli("shadow", "report", "--log", str(log), "--report", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    stderr = " ".join(result.stderr.split())  # rich wraps long lines
    assert "'[/oops]' is not a tier of the spec" in stderr and "2 more line(s)" in stderr  # shown as written, not as markup
    assert "75.0 % would have stayed on-device" in " ".join(result.stdout.split())
    figures = json.loads((tmp_path / "report" / "report.json").read_text())
    assert figures["cost"]["saved"] == 0.75 and len(figures["disagreements"]) == 3
    assert figures["skipped_lines"]["count"] == 7 and len(figures["skipped_lines"]["lines"]) == 7
    assert (tmp_path / "report" / "report.html").is_file()
    empty = run_cli("shadow", "report", "--log", str(tmp_path / "nothing"))
    assert empty.returncode == 1 and "No shadow records" in empty.stderr
    bad = run_cli("serve", "--shadow", "gpt-9", "--port", "0")
    assert bad.returncode == 1 and "--shadow gpt-9: no such tier" in bad.stderr


def test_serve_refuses_an_open_bind_without_a_key_and_never_prints_the_key(tmp_path: Path) -> None:
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert_clean_failure(refused, "Refusing to serve on 0.0.0.0 without an API key", "--insecure-no-auth")
    assert_clean_failure(run_cli("serve", "--key-usd-per-day", "5"), "Per-key limits need API keys")
    assert_clean_failure(run_cli("serve", "--api-key", "short"), "API key 1 is not usable")
    key = "sk-slmkit-" + "s" * 30
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "slmkit.cli", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SLMKIT_API_KEY": f"{key},{'t' * 32}"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                denied = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}x"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
                time.sleep(0.2)
        assert denied.status_code == 401
        allowed = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert allowed.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert "2 API key(s) required" in " ".join(err.split())
    assert key not in out + err and "t" * 32 not in out + err
