"""`slmkit logs label` as a user runs it: cost shown first, a killed run resumes without paying
twice for what it had labelled, labelled.jsonl ready for `router train`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_cli
from tests.runtime.batch.labeller_mock import MockLabeller, spec_with_labeller

TOPICS = ("Write a story about {}", "Solve for {} in x + 2 = 5", "What is the sentiment of '{} is great'?",
          "Who invented {}?")


def _logs(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"r{i}", "prompt": TOPICS[i % 4].format(f"thing {i}"),
                                        **({"tier": "complex"} if i % 4 == 0 else {})}) + "\n" for i in range(count)),
                    encoding="utf-8")
    return path


def _spec(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(spec_with_labeller(url)), encoding="utf-8")
    return path


def test_a_killed_labelling_run_resumes_without_relabelling(tmp_path: Path) -> None:
    data, out = _logs(tmp_path / "logs.jsonl", 60), tmp_path / "labels"
    with MockLabeller(delay_s=0.05) as mock:
        command = [sys.executable, "-m", "slmkit.cli", "logs", "label", "--data", str(data), "--output", str(out),
                   "--spec", str(_spec(tmp_path, mock.url)), "--tier", "labeller", "--rate", "40", "--concurrency", "2",
                   "--yes", "--engine", "local"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        journal = out / "journal" / "part-000000.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (journal.is_file() and len(journal.read_text().splitlines()) >= 15):
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        kept = len(journal.read_text().splitlines())
        assert 15 <= kept < 60 and not (out / "labelled.jsonl").exists()
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert f"({kept} already labelled here)" in " ".join(result.stderr.split())
        calls = len(mock.calls)
    assert calls <= 60 + 2      # at most the two requests in flight at the kill were sent twice
    labelled = [json.loads(line) for line in (out / "labelled.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in labelled) == sorted(f"r{i}" for i in range(60))
    assert {r["tier"] for r in labelled if r["prompt"].startswith("Solve")} == {"complex"}
    assert all(r["label_source"] == "labeller:mock-labeller-1" for r in labelled)
    assert sum("original_tier" in r for r in labelled) == 15
    report = json.loads((out / "report.json").read_text())
    assert report["labelled"] == 60 and report["agreement"]["compared"] == 15 and report["agreement"]["tier_agreement"] == 1.0


def test_the_cost_is_shown_and_declining_sends_nothing(tmp_path: Path) -> None:
    data = _logs(tmp_path / "logs.jsonl", 8)
    with MockLabeller() as mock:
        result = run_cli("logs", "label", "--data", str(data), "--output", str(tmp_path / "out"), "--spec",
                         str(_spec(tmp_path, mock.url)), "--tier", "labeller", input="n\n")
        assert result.returncode == 1 and not mock.calls
    text = " ".join(result.stderr.split())
    assert "8 requests (0 already labelled here)" in text and "to labeller (mock-labeller): ~$0.0" in text


def test_a_simulated_labeller_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = run_cli("logs", "label", "--data", str(_logs(tmp_path / "logs.jsonl", 4)), "--output", str(tmp_path / "out"), "--yes")
    assert result.returncode == 1 and "Tier frontier is simulated" in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()

