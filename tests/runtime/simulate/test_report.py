"""report.json carries every number; report.html is self-contained (inline SVG, no scripts, no fetches)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from slmkit.runtime.simulate.report import write_report
from tests.runtime.fakes import Scripted
from tests.runtime.simulate.test_run import dataset, simulator


def test_report_files(tmp_path: Path) -> None:
    sim = simulator(Scripted("ok", "9"), Scripted("m"), Scripted("f"))
    data = dataset(("s: a", "simple"), ("m: b", "medium"), ("c: <script>alert(1)</script>", "complex"))
    summary = sim.summarize(sim.run_all(data), data, 5000)
    json_path, html_path = write_report(summary, tmp_path / "r")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(summary))
    html = html_path.read_text()
    assert html.count("<svg") == 4
    assert "<script" not in html and not re.search(r'(src|href)="http', html.replace('href="https://', ""))
    assert "iPhone 15 Pro" in html and "$5,000" not in html and "5,000 requests/day" in html
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name not in ("report.json", "report.html")]
