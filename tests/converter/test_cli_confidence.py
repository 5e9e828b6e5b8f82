"""`slmkit confidence eval` as a user runs it: every method in one report, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

GOLD = [
    {"prompt": "Classify the tone (positive / negative) of: I love it!", "references": ["positive"], "source": "a"},
    {"prompt": "Which intent? Options: play_music, set_alarm\n\nUser: wake me at 7", "references": ["set_alarm"], "source": "b"},
    {"prompt": "What is the capital of France?", "references": ["Paris"], "source": "b"},
]
METHOD_KEYS = {"n", "accuracy", "auroc", "threshold", "kept_share", "kept_accuracy", "escalated_accuracy", "ms_p50", "by_source"}


def test_eval_scores_every_method_on_the_tier_and_writes_json_and_html(tmp_path: Path) -> None:
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in GOLD) + "not json\n", encoding="utf-8")
    result = run_cli("confidence", "eval", "--data", str(data), "--report", str(tmp_path / "r" / "report.json"),
                     "--max-tokens", "6")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["n"] == 3 and 0 <= report["accuracy"] <= 1 and report["default_method"]
    assert {"sampled_rating", "self_rating", "token_logprob:mean", "options"} <= set(report["methods"])
    assert all(METHOD_KEYS <= set(m) for m in report["methods"].values())
    assert report["methods"]["options"]["n"] == 2  # the open question has no closed label set
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 3 and "Reliability" in html


def test_eval_refuses_a_tier_without_logits_and_a_missing_file(tmp_path: Path) -> None:
    data = tmp_path / "gold.jsonl"
    data.write_text(json.dumps(GOLD[0]) + "\n", encoding="utf-8")
    result = run_cli("confidence", "eval", "--data", str(data), "--report", str(tmp_path / "r.json"), "--tier", "mid")
    assert result.returncode == 1 and "needs a llama.cpp tier" in result.stderr and "Traceback" not in result.stderr
    missing = run_cli("confidence", "eval", "--data", str(tmp_path / "none.jsonl"), "--report", str(tmp_path / "r.json"))
    assert missing.returncode == 1 and "No data file" in missing.stderr and not (tmp_path / "r.json").exists()
