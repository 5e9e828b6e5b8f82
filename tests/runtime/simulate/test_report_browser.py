"""report.html as a person sees it: rendered in headless Chromium, no text in a chart covers other
text (tick labels, bar labels, titles) or a legend, and no chart spills out of its card."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slmkit.runtime.evaluation import LATENCY_BIN_MS
from slmkit.runtime.simulate.report import write_report
from tests.runtime.fakes import Scripted
from tests.runtime.simulate.test_run import dataset, routed_tally, simulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")

# Runs in the page after load: every text group matplotlib wrote (g#text_N) and every legend box,
# per chart; overlaps larger than half a square pixel are problems, as is a chart wider than its card.
LAYOUT_PROBE = """<script>
addEventListener('load', () => {
  const problems = [];
  const overlap = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) *
                            Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  document.querySelectorAll('.card').forEach((card, c) => {
    const svg = card.querySelector('svg');
    if (!svg) return;
    const box = svg.getBoundingClientRect(), frame = card.getBoundingClientRect();
    if (box.right > frame.right + 1 || box.left < frame.left - 1) problems.push(`chart ${c} is wider than its card`);
    const legends = [...svg.querySelectorAll('g[id^="legend_"]')];
    const texts = [...svg.querySelectorAll('g[id^="text_"]')].filter(g => !legends.some(l => l.contains(g)))
      .map(g => [g.id, g.getBoundingClientRect(), g.textContent]).filter(([, r]) => r.width > 0);
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        if (overlap(texts[i][1], texts[j][1]) > 0.5) problems.push(`chart ${c}: ${texts[i][0]} overlaps ${texts[j][0]}`);
      }
      for (const legend of legends) {
        if (overlap(texts[i][1], legend.getBoundingClientRect()) > 0.5) problems.push(`chart ${c}: ${texts[i][0]} under the legend`);
      }
    }
  });
  document.body.setAttribute('data-layout', JSON.stringify(problems));
});
</script>"""


def _rendered_problems(html_path: Path, tmp_path: Path) -> list[str]:
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", "--dump-dom",
                             probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-layout="([^"]*)"', result.stdout)
    assert found, f"the page did not run its layout probe: {result.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def _busy_summary(router_only: bool) -> dict:
    """A run with every tier answering: the pipeline (escalations, latencies over decades) or
    router-only (latencies within one decade, where matplotlib labels minor ticks)."""
    replies = []
    for i in range(30):
        replies += [f"answer {i}", "9" if i % 4 else "2"]
    sim = simulator(Scripted(*replies), Scripted(*["mid"] * 40), Scripted(*["deep"] * 40))
    rows = [(f"s: question {i}", "simple") for i in range(30)] + [(f"m: task {i}", "medium") for i in range(15)]
    rows += [(f"c: proof {i}", "complex") for i in range(15)] + [(f"u: unsure {i}", "simple") for i in range(10)]
    data = dataset(*rows)
    if not router_only:
        return sim.summarize(sim.run_all(data), data, 20000)
    tally = routed_tally(sim, data)
    for tier, bins in tally.routing.latency_bins.items():  # the scripted router takes a constant 10 ms; a real one
        count = sum(bins.values())                         # spreads over 0.3-4 ms (seen 2026-12-05)
        tally.routing.latency_bins[tier] = {round(0.3 * (4 / 0.3) ** (i / max(1, count - 1)) / LATENCY_BIN_MS): 1
                                            for i in range(count)}
    summary = sim.summarize_routing(tally, 20000)
    return summary


@pytest.mark.parametrize("router_only", [False, True])
def test_no_chart_text_overlaps_in_the_rendered_report(tmp_path: Path, router_only: bool) -> None:
    _, html_path = write_report(_busy_summary(router_only), tmp_path / "r")
    assert _rendered_problems(html_path, tmp_path) == []


def test_the_probe_sees_overlapping_labels(tmp_path: Path) -> None:
    """The probe itself can fail: two tick labels drawn on top of each other are reported."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    from slmkit.runtime.simulate.report import _svg

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks([0, 0.01], ["a long label", "another long label"])
    page = tmp_path / "page.html"
    page.write_text(f"<html><body><div class='card'>{_svg(fig)}</div></body></html>", encoding="utf-8")
    assert any("overlaps" in p for p in _rendered_problems(page, tmp_path))
