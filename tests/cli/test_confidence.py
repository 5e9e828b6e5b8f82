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
                     "--max-tokens", "6", "--observations", str(tmp_path / "obs.jsonl"))
    assert result.returncode == 0, result.stderr
    observed = [json.loads(line) for line in (tmp_path / "obs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o["source"] for o in observed] == ["a", "b", "b"] and [o["features"]["options"] for o in observed] == [1, 1, 0]
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
    assert result.returncode == 1 and "need a llama.cpp tier" in result.stderr and "Traceback" not in result.stderr
    missing = run_cli("confidence", "eval", "--data", str(tmp_path / "none.jsonl"), "--report", str(tmp_path / "r.json"))
    assert missing.returncode == 1 and "No data file" in missing.stderr and not (tmp_path / "r.json").exists()


def observation_lines(n: int) -> str:
    """Labelled answers whose rightness follows the option probability, from two sources."""
    from slmkit.runtime.confidence.head import option_features

    lines = []
    for i in range(n):
        probability = (i % 10 + 0.5) / 10
        lines.append({"source": "ab"[i % 2], "right": probability > 0.5 if i % 7 else probability < 0.5,
                      "features": option_features(probability, probability / 2, 4, 40)})
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_train_writes_a_spec_with_the_fitted_head_that_the_runtime_loads(tmp_path: Path) -> None:
    from slmkit.runtime.spec import load_spec

    observations = tmp_path / "obs.jsonl"
    observations.write_text(observation_lines(80), encoding="utf-8")
    out = tmp_path / "routing.json"
    result = run_cli("confidence", "train", "--from-observations", str(observations), "--output", str(out))
    assert result.returncode == 0, result.stderr
    check = load_spec(out).confidence_check
    assert check.method == "trained" and check.head is not None and 0 < check.threshold < 1
    assert check.head.fitted["held_out_auroc"] > 0.7 and "all, each held out" in result.stdout
    again = run_cli("confidence", "train", "--from-observations", str(observations), "--output", str(out))
    assert again.returncode == 1 and "--force" in again.stderr


def test_train_refuses_bad_inputs_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "routing.json"
    neither = run_cli("confidence", "train", "--output", str(out))
    assert neither.returncode == 1 and "--data" in neither.stderr and "Traceback" not in neither.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"right": True, "features": {"options": 1}}) + "\n", encoding="utf-8")
    refused = run_cli("confidence", "train", "--from-observations", str(bad), "--output", str(out))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    one_kind = tmp_path / "wrong.jsonl"
    one_kind.write_text("".join(line for line in observation_lines(40).splitlines(keepends=True) if '"right": false' in line),
                        encoding="utf-8")
    refused = run_cli("confidence", "train", "--from-observations", str(one_kind), "--output", str(out))
    assert refused.returncode == 1 and "all wrong" in refused.stderr and not out.exists()


def test_eval_without_the_convert_extra_leaves_the_held_out_head_out(monkeypatch, capsys) -> None:
    """The runtime flavour answers and scores every method; only `trained:held_out` (scikit-learn) is left out."""
    from slmkit.cli import confidence

    monkeypatch.setattr(confidence, "missing_modules", lambda extra: ["sklearn"])

    class Observation:
        def record(self):  # reached only if the head were fitted
            raise AssertionError("the held-out head was fitted without scikit-learn")

    confidence._add_held_out_head([Observation()])
    out = " ".join(capsys.readouterr().err.split())
    assert "trained:held_out left out" in out and 'pip install "slmkit[convert]"' in out
