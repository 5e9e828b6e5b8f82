"""report.json (every number) and report.html (self-contained: inline SVG plots, no scripts, opens
offline) for a simulation run."""

from __future__ import annotations

import io
import json
import math
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
    """The four charts as inline SVG, one function each."""
    import matplotlib

    matplotlib.use("svg")
    tiers = list(summary["tier_mix"]["final"])
    colours = {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(tiers)}
    return {"tier_mix": _tier_mix(summary, tiers, colours), "latency_cdf": _latency_cdf(summary, colours),
            "cost": _cost(summary["cost"]), "sweep": _sweep(summary)}


def _below(ax, columns: int) -> None:
    """The legend under the plot, where it covers no data and no labels."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, frameon=False)


def _tier_mix(summary: dict, tiers: list[str], colours: dict[str, str]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    top = 0.0
    for offset, kind in ((-width / 2, "routed"), (width / 2, "final")):
        values = [100 * (summary["tier_mix"][kind][t] or 0) for t in tiers]
        bars = ax.bar([i + offset for i in range(len(tiers))], values, width, label=f"{kind} tier",
                      color=[colours[t] for t in tiers], alpha=0.55 if kind == "routed" else 1.0, edgecolor="black")
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7, padding=2)
        top = max(top, *values)
    ax.set_ylim(0, top * 1.18 + 1)  # room for the bar labels inside the frame
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_ylabel("% of requests")
    ax.set_title("Tier mix: where requests were routed" + ("" if summary["mode"] == "router-only" else " and answered"),
                 fontsize=10)
    _below(ax, 2)
    return _svg(fig)


def _duration(ms: float, _position: object = None) -> str:
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _latency_cdf(summary: dict, colours: dict[str, str]) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(6, 3.4))
    every = [ms for points in summary["latency_cdf_ms"].values() for ms, _ in points if ms > 0]
    for tier, points in summary["latency_cdf_ms"].items():
        if points:
            n = summary["latency_ms"]["end_to_end_by_final_tier"][tier]["n"]
            ax.plot([ms for ms, _ in points], [at for _, at in points], drawstyle="steps-post",
                    marker="o" if n < 30 else None, markersize=3, color=colours[tier], label=f"{tier} (n={n:,})")
    ax.set_xscale("log")
    decades = math.log10(max(every) / min(every)) if every else 0.0
    # labelled ticks far enough apart for their labels: 1-2-5 within a decade or two, then fewer
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5) if decades < 1.5 else (1, 3) if decades < 3 else (1,)))
    ax.xaxis.set_major_formatter(FuncFormatter(_duration))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    routed = summary["mode"] == "router-only"
    ax.set_xlabel(f"predicted {'router' if routed else 'end-to-end'} latency on {summary['device']['label']} (log scale)",
                  fontsize=8)
    ax.set_ylabel("share of requests ≤ x")
    ax.set_title(f"Latency CDF by {'routed' if routed else 'answering'} tier", fontsize=10)
    ax.grid(alpha=0.3)
    _below(ax, 3)
    return _svg(fig)


def _cost(cost: dict) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = [f"all {cost['baseline_tier']}", "routed"]
    values = [cost["baseline_usd_per_day"], cost["usd_per_day"]]
    bars = ax.barh(labels, values, color=["#999999", "#2a9d8f"])
    ax.bar_label(bars, labels=[rf"\${v:,.0f}/day · \${30 * v:,.0f}/month" for v in values], fontsize=8, padding=3)
    ax.set_xlim(0, max(values) * 1.6 or 1)
    ax.set_xlabel(f"USD per day at {cost['requests_per_day']:,.0f} requests/day")
    ax.set_title(f"Cost: {100 * cost['savings']:.1f} % saved against all-{cost['baseline_tier']}", fontsize=10)
    return _svg(fig)


def _sweep(summary: dict) -> str:
    """USD/day from 0 and the on-device shares from 0 %, every series drawn above the axes."""
    import matplotlib.pyplot as plt

    sweep = summary["threshold_sweep"]
    thresholds = [row["simple_min_confidence"] for row in sweep]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(thresholds, [row["usd_per_day"] for row in sweep], marker="o", color="#264653", label="USD per day",
            clip_on=False, zorder=3)
    ax.set_ylim(0, max(row["usd_per_day"] for row in sweep) * 1.15 or 1)
    ax.set_xlabel("simple route's minimum confidence")
    ax.set_ylabel("USD per day")
    ax.grid(alpha=0.3)
    current = next((row["simple_min_confidence"] for row in sweep if row.get("current")), None)
    if current is not None:
        ax.axvline(current, color="#777777", linestyle="--", linewidth=1, label="the spec's threshold")
    share = ax.twinx()
    share.plot(thresholds, [100 * row["on_device"] for row in sweep], marker="s", color="#2a9d8f",
               label="% kept on-device", clip_on=False, zorder=3)
    if any(row["complex_on_device"] is not None for row in sweep):
        share.plot(thresholds, [100 * (row["complex_on_device"] or 0) for row in sweep], marker="^", color="#e76f51",
                   label="% of complex kept on-device", clip_on=False, zorder=4)
    share.set_ylabel("% of requests")
    share.set_ylim(-5, 105)  # a series at 0 % shows above the axis, not on it
    lines = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=2, frameon=False)
    ax.set_title("Threshold sweep: cost vs what stays on-device", fontsize=10)
    return _svg(fig)


def write_report(summary: dict, folder: Path) -> tuple[Path, Path]:
    """report.json, then report.html with the figures, in `folder` (created), each written atomically.
    Returns both paths. Raises SlmkitError when the folder cannot be created or is a file.
    """
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
