"""The `confidence eval` report: r.json (every number) and r.html beside it (self-contained:
inline SVG plots, no scripts): reliability, ROC and accuracy-coverage curves per method."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.paths import write_atomically
from slmkit.runtime.simulate.report import _svg

BINS = 10


def probability_scale(method: str, value: float) -> float:
    """A method's value on 0-1 (ratings 1-10 map linearly), for plots that share an axis."""
    return (value - 1) / 9 if method.split(":")[0] in ("sampled_rating", "self_rating") else value


def reliability(values: list[float], right: list[bool]) -> list[dict[str, float]]:
    """Equal-width bins over 0-1: mean confidence, accuracy and count of the non-empty ones."""
    rows = []
    for b in range(BINS):
        inside = [(v, r) for v, r in zip(values, right) if b / BINS <= v < (b + 1) / BINS or (b == BINS - 1 and v == 1.0)]
        if inside:
            rows.append({"confidence": sum(v for v, _ in inside) / len(inside),
                         "accuracy": sum(r for _, r in inside) / len(inside), "n": len(inside)})
    return rows


def curves(values: list[float], right: list[bool]) -> dict[str, list[float]]:
    """ROC (fpr, tpr) and accuracy-coverage (kept share, kept accuracy) over every threshold."""
    pos, neg = max(1, sum(right)), max(1, len(right) - sum(right))
    out: dict[str, list[float]] = {"fpr": [0.0], "tpr": [0.0], "coverage": [], "kept_accuracy": []}
    for t in sorted(set(values), reverse=True):
        kept = [r for v, r in zip(values, right) if v >= t]
        out["fpr"].append(sum(not r for r in kept) / neg)
        out["tpr"].append(sum(kept) / pos)
        out["coverage"].append(len(kept) / len(values))
        out["kept_accuracy"].append(sum(kept) / len(kept))
    return out


Points = dict[str, tuple[list[float], list[bool]]]  # per method: confidence values, answer right?


def _figures(summary: dict[str, Any], points: Points) -> dict[str, str]:
    """The report's three SVG figures (reliability, ROC, accuracy vs coverage), one colour per method."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10").colors
    colours = {name: palette[i % len(palette)] for i, name in enumerate(points)}
    return {"reliability": _svg(_reliability(plt, points, colours)), "roc": _svg(_roc(plt, summary, points, colours)),
            "coverage": _svg(_coverage(plt, summary, points, colours))}


def _reliability(plt: Any, points: Points, colours: dict[str, Any]) -> Any:
    """Share of answers right per confidence bin (10 bins; ratings mapped to (r - 1) / 9)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (values, right) in points.items():
        rows = reliability([probability_scale(name, v) for v in values], right)
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", color=colours[name],
                label=name)
    ax.set_xlabel("confidence (ratings as (r - 1) / 9), 10 bins")
    ax.set_ylabel("share of answers right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Reliability: does a confident answer tend to be right?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _roc(plt: Any, summary: dict[str, Any], points: Points, colours: dict[str, Any]) -> Any:
    """ROC of right vs wrong answers per method, its AUROC in the legend."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="chance")
    for name, (values, right) in points.items():
        curve = curves(values, right)
        auroc = summary["methods"][name]["auroc"]
        ax.plot(curve["fpr"], curve["tpr"], color=colours[name], drawstyle="steps-post",
                label=f"{name} (AUROC {'—' if auroc is None else f'{auroc:.2f}'})")
    ax.set_xlabel("wrong answers kept (false-positive rate)")
    ax.set_ylabel("right answers kept (true-positive rate)")
    ax.set_title("ROC: right vs wrong answers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _coverage(plt: Any, summary: dict[str, Any], points: Points, colours: dict[str, Any]) -> Any:
    """Accuracy of the answers kept on the tier vs the share kept, as the threshold moves."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(summary["accuracy"] or 0, color="#999999", linestyle="--", linewidth=1, label="all answers kept")
    for name, (values, right) in points.items():
        curve = curves(values, right)
        ax.plot(curve["coverage"], curve["kept_accuracy"], color=colours[name], label=name)
    ax.set_xlabel("share of answers kept on the tier")
    ax.set_ylabel("accuracy of the kept answers")
    ax.set_ylim(0, 1.02)
    ax.set_title("Accuracy vs coverage as the threshold moves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def write_report(summary: dict[str, Any], points: Points, json_path: Path) -> tuple[Path, Path]:
    """`json_path` and the HTML beside it (same stem). `points`: per method, values and rightness.

    Raises SlmkitError when the folder cannot be written.
    """
    json_path = Path(json_path)
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(json_path, json.dumps(summary, indent=2) + "\n")
        html_path = json_path.with_suffix(".html")
        env = Environment(loader=PackageLoader("slmkit.runtime.confidence", "templates"), autoescape=select_autoescape())
        write_atomically(html_path, env.get_template("report.html.j2").render(s=summary, figures=_figures(summary, points)))
    except OSError as exc:
        raise SlmkitError(f"Cannot write the report at {json_path}: {exc}") from None
    return json_path, html_path
