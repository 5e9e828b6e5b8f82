"""report.json (every number) and report.html (self-contained: inline SVG plots, no scripts, opens
offline) for a simulation run."""

from __future__ import annotations

import io
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.paths import write_atomically
from slmkit.runtime.router.provenance import overlap_warning

TIER_COLOURS = ("#2a9d8f", "#e9c46a", "#e76f51", "#264653", "#8ab17d", "#9c6644")


def _svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figures(summary: dict) -> dict[str, str]:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    tiers = list(summary["tier_mix"]["final"])
    colours = {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(tiers)}
    figures = {}

    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.38
    for offset, kind in ((-width / 2, "routed"), (width / 2, "final")):
        values = [100 * (summary["tier_mix"][kind][t] or 0) for t in tiers]
        bars = ax.bar([i + offset for i in range(len(tiers))], values, width, label=f"{kind} tier",
                      color=[colours[t] for t in tiers], alpha=0.55 if kind == "routed" else 1.0, edgecolor="black")
        ax.bar_label(bars, fmt="%.1f%%", fontsize=8)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_ylabel("% of requests")
    ax.set_title("Tier mix: where the router sent requests, where they were answered")
    ax.legend(fontsize=8)
    figures["tier_mix"] = _svg(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for tier, values in summary["latency_samples_ms"].items():
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], drawstyle="steps-post",
                    marker="o" if len(values) < 30 else None, markersize=3, color=colours[tier],
                    label=f"{tier} (n={len(values)})")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"predicted end-to-end latency on {summary['device']['label']} (ms, log)")
    ax.set_ylabel("share of requests ≤ x")
    ax.set_title("Latency CDF by answering tier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figures["latency_cdf"] = _svg(fig)

    cost = summary["cost"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = [f"all {cost['baseline_tier']}", "routed"]
    values = [cost["baseline_usd_per_day"], cost["usd_per_day"]]
    bars = ax.barh(labels, values, color=["#999999", "#2a9d8f"])
    ax.bar_label(bars, labels=[rf"\${v:,.0f}/day · \${30 * v:,.0f}/month" for v in values], fontsize=8, padding=3)
    ax.set_xlim(0, max(values) * 1.6 or 1)
    ax.set_xlabel(f"USD per day at {cost['requests_per_day']:,.0f} requests/day")
    ax.set_title(f"Cost: {100 * cost['savings']:.1f} % saved against all-{cost['baseline_tier']}")
    figures["cost"] = _svg(fig)

    sweep = summary["threshold_sweep"]
    thresholds = [row["simple_min_confidence"] for row in sweep]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(thresholds, [row["usd_per_day"] for row in sweep], marker="o", color="#264653", label="USD per day")
    ax.set_xlabel("simple route's minimum confidence")
    ax.set_ylabel("USD per day")
    ax.grid(alpha=0.3)
    share = ax.twinx()
    share.plot(thresholds, [100 * row["on_device"] for row in sweep], marker="s", color="#2a9d8f", label="% kept on-device")
    if any(row["complex_on_device"] is not None for row in sweep):
        share.plot(thresholds, [100 * (row["complex_on_device"] or 0) for row in sweep], marker="^", color="#e76f51",
                   label="% of complex kept on-device")
    share.set_ylabel("% of requests")
    share.set_ylim(0, 100)
    lines = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="center left")
    ax.set_title("Threshold sweep: cost vs what stays on-device")
    figures["sweep"] = _svg(fig)
    return figures


def write_report(summary: dict, folder: Path) -> tuple[Path, Path]:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SlmkitError(f"Cannot create the report folder {folder}: {exc}") from None
    if not folder.is_dir():
        raise SlmkitError(f"{folder} is not a folder.")
    json_path, html_path = folder / "report.json", folder / "report.html"
    write_atomically(json_path, json.dumps(summary, indent=2) + "\n")  # first: the numbers survive any rendering bug
    env = Environment(loader=PackageLoader("slmkit.runtime.simulate", "templates"), autoescape=select_autoescape())
    write_atomically(html_path, env.get_template("report.html.j2").render(
        s=summary, figures=_figures(summary), overlap_warning=overlap_warning(summary.get("training_overlap"))))
    return json_path, html_path
