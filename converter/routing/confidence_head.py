"""Fit the `trained` confidence head (runtime/confidence/head.py) on labelled answers.

Input: records `{"source", "right", "features"}` as `confidence eval`/`train` observe them (one per
answer the tier keeps or escalates). A logistic regression on standardized features (scikit-learn,
L2, C=1), exported as plain numbers the runtime and the mobile ports evaluate without it.

Held-out scoring is leave-one-source-out: each source's answers are scored by a head fitted on the
other sources only; the threshold is the Youden point of those held-out values. With one source
there is nothing to hold out and the threshold is fitted in-sample (and said so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from slmkit.runtime.confidence.evaluate import at_threshold, auroc, youden_threshold
from slmkit.runtime.confidence.head import FEATURES, head_value
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TrainedHead

MIN_SCALE = 1e-3  # a feature constant over the data keeps a finite, harmless scale
REGULARIZATION_C = 1.0


def fit_head(records: Sequence[dict[str, Any]], features: Sequence[str] = tuple(FEATURES)) -> TrainedHead:
    """A head fitted on all `records`.

    Raises SlmkitError when the records hold only right or only wrong answers.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.array([[float(r["features"][name]) for name in features] for r in records], dtype=np.float64)
    y = np.array([bool(r["right"]) for r in records])
    if y.all() or not y.any():
        raise SlmkitError(f"Cannot fit a confidence head on {len(y)} answers that are all {'right' if y.all() else 'wrong'}.",
                          hint="Label answers of both kinds (a gold set the tier gets partly right).")
    center = x.mean(axis=0)
    scale = np.maximum(x.std(axis=0), MIN_SCALE)
    model = LogisticRegression(C=REGULARIZATION_C, max_iter=1000).fit((x - center) / scale, y)
    return TrainedHead(features=list(features), weights=[float(w) for w in model.coef_[0]], center=center.tolist(),
                       scale=scale.tolist(), bias=float(model.intercept_[0]))


def held_out_values(records: Sequence[dict[str, Any]]) -> list[float | None]:
    """Per record, the value of a head fitted without its source (None where the other sources
    cannot fit one: a single source, or only one kind of answer among the others)."""
    values: list[float | None] = [None] * len(records)
    sources = sorted({str(r.get("source", "")) for r in records})
    if len(sources) < 2:
        return values
    for held_out in sources:
        train = [r for r in records if str(r.get("source", "")) != held_out]
        kinds = {bool(r["right"]) for r in train}
        if len(kinds) < 2:
            continue
        head = fit_head(train)
        for i, record in enumerate(records):
            if str(record.get("source", "")) == held_out:
                values[i] = head_value(head, record["features"])
    return values


@dataclass
class Fitted:
    head: TrainedHead
    threshold: float
    summary: dict[str, Any]  # n, right share, held-out AUROC and kept/escalated accuracy per source


def train_head(records: Sequence[dict[str, Any]]) -> Fitted:
    """The head to ship (fitted on every record) and its threshold (Youden's J on held-out values).

    Raises SlmkitError as fit_head does.
    """
    head = fit_head(records)
    right = [bool(r["right"]) for r in records]
    held = held_out_values(records)
    scored = [(v, r) for v, r in zip(held, right) if v is not None]
    summary: dict[str, Any] = {"n": len(records), "accuracy": sum(right) / len(right),
                               "sources": sorted({str(r.get("source", "")) for r in records})}
    if scored and len({r for _, r in scored}) == 2:
        values, flags = [v for v, _ in scored], [r for _, r in scored]
        threshold = youden_threshold(values, flags)
        assert threshold is not None
        summary.update(threshold_source="Youden's J on leave-one-source-out values", held_out_auroc=auroc(values, flags),
                       **{f"held_out_{k}": v for k, v in at_threshold(values, flags, threshold).items() if k != "threshold"})
        summary["by_source"] = {
            source: {"n": len(rows), "auroc": auroc([v for v, _ in rows], [r for _, r in rows]),
                     **{k: v for k, v in at_threshold([v for v, _ in rows], [r for _, r in rows], threshold).items()
                        if k != "threshold"}}
            for source in summary["sources"]
            if (rows := [(v, r) for v, r, rec in zip(held, right, records)
                         if v is not None and str(rec.get("source", "")) == source])}
    else:
        values = [head_value(head, r["features"]) for r in records]
        threshold = youden_threshold(values, right)
        assert threshold is not None
        summary.update(threshold_source="Youden's J in-sample (no source could be held out)",
                       in_sample_auroc=auroc(values, right))
    threshold = min(1.0, max(0.0, float(threshold)))
    head.fitted = {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
                   for k, v in summary.items() if k != "by_source"}
    return Fitted(head, threshold, summary)
