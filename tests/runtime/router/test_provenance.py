"""A router head knows which requests it was trained on, so evaluating on them is flagged."""

from __future__ import annotations

import json
from pathlib import Path

from slmkit.runtime.data import read_datasets
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.request import Request
from slmkit.runtime.router.head import load_head
from slmkit.runtime.router.provenance import (
    fingerprint,
    fingerprint_record,
    overlap_warning,
    trained_on,
    training_overlap,
)
from tests.conftest import run_cli

DATA = Path(__file__).parents[3] / "data" / "routing"


def test_fingerprints_ignore_normalization_and_surrounding_space_but_not_content() -> None:
    composed, decomposed = Request("Café au lait?", "Be brief."), Request(" Cafe\u0301 au lait?\n", "Be brief. ")
    assert fingerprint(composed) == fingerprint(decomposed)
    assert fingerprint(composed) != fingerprint(Request("Café au lait!", "Be brief."))
    assert fingerprint(composed) != fingerprint(Request("Be brief.", "Café au lait?"))  # system and user kept apart
    assert fingerprint(Request("\ud800")) != fingerprint(Request(""))  # lone surrogates do not crash


def test_overlap_counts_the_requests_a_head_was_trained_on() -> None:
    seen = [Request(f"request {i}") for i in range(10)]
    info = {"train_fingerprints": fingerprint_record(seen)}
    assert len(trained_on(info)) == 10 and trained_on({}) is None
    overlap = training_overlap(info, seen[:3] + [Request("new one")])
    assert overlap == {"requests": 4, "seen": 3, "share": 0.75}
    assert overlap_warning(overlap).startswith("3 of 4 requests (75.0 %) are ones the router was trained on")
    assert overlap_warning(training_overlap(info, [Request("new one")])) is None


def test_the_shipped_router_records_exactly_its_training_requests() -> None:
    head = load_head(default_spec_path().parent / "router-head.json")
    files = [DATA / entry["file"] for entry in head.info["data"]]
    items = read_datasets(files).items
    assert len(trained_on(head.info)) == head.info["examples"] == len(items)
    assert training_overlap(head.info, [i.request for i in items])["share"] == 1.0


def test_simulate_and_router_eval_warn_on_the_router_training_data(tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    items = read_datasets([DATA / "train.jsonl.gz"]).items[:20]
    seen.write_text("".join(json.dumps({"prompt": i.request.user, "system": i.request.system, "tier": i.tier}) + "\n"
                            for i in items), encoding="utf-8")
    fresh = tmp_path / "fresh.jsonl"
    fresh.write_text(json.dumps({"prompt": "Tell me which of my three cats sheds the most, given their breeds: "
                                           "a Ragdoll, a Sphynx and a Maine Coon.", "tier": "simple"}) + "\n",
                     encoding="utf-8")
    result = run_cli("simulate", "--workload", str(seen), "--router-only", "--report", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "20 of 20 requests (100.0 %) are ones the router was trained on" in " ".join(result.stderr.split())
    assert json.loads((tmp_path / "r" / "report.json").read_text())["training_overlap"]["seen"] == 20
    assert "are ones the router was trained on" in (tmp_path / "r" / "report.html").read_text()
    evaluated = run_cli("router", "eval", "--data", str(seen), "--report", str(tmp_path / "seen.json"))
    assert "are ones the router was trained on" in " ".join(evaluated.stderr.split())
    clean = run_cli("router", "eval", "--data", str(fresh), "--report", str(tmp_path / "fresh.json"))
    assert clean.returncode == 0 and "trained on" not in clean.stderr
    assert json.loads((tmp_path / "fresh.json").read_text())["training_overlap"]["seen"] == 0
