"""Calibrating the zero-shot `label_logits` router on labelled requests (`router train --method label_logits`).

The model's label-token logits stay what they are; a per-label bias and one temperature are fitted
(minimum negative log-likelihood), so p = softmax((logit + bias) / T) — exactly the runtime's
formula, stored in the spec, no head file. Figures are out-of-fold like the classifier's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slmkit.converter.routing.train import figures
from slmkit.runtime.data import Dataset
from slmkit.runtime.spec import RoutingSpec


@dataclass
class Calibration:
    bias: dict[str, float]
    temperature: float
    cv: dict


def label_logit_matrix(dataset: Dataset, router, progress=None) -> np.ndarray:
    """Raw label logits per request, from the runtime's own LabelLogitsRouter."""
    rows = []
    for item in dataset.items:
        rows.append(router.label_logits(item.request)[0])
        if progress is not None:
            progress()
    return np.asarray(rows, dtype=np.float64)


def fit_bias_temperature(logits: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Bias (first label fixed at 0) and temperature minimizing the mean negative log-likelihood."""
    from scipy.optimize import minimize

    def nll(params: np.ndarray) -> float:
        bias = np.concatenate([[0.0], params[:-1]])
        z = (logits + bias) / np.exp(params[-1])
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(target)), target].mean())

    start = np.zeros(logits.shape[1])
    best = minimize(nll, start, method="L-BFGS-B", bounds=[(-50, 50)] * (logits.shape[1] - 1) + [(np.log(0.05), np.log(20))])
    return np.concatenate([[0.0], best.x[:-1]]), float(np.exp(best.x[-1]))


def _out_of_fold(logits: np.ndarray, target: np.ndarray, y: np.ndarray, folds: int, groups: np.ndarray | None) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    splitter = StratifiedKFold(folds, shuffle=True, random_state=0) if groups is None else \
        StratifiedGroupKFold(folds, shuffle=True, random_state=0)
    calibrated = np.zeros_like(logits)
    for train_idx, test_idx in splitter.split(logits, y, groups):
        bias, temperature = fit_bias_temperature(logits[train_idx], target[train_idx])
        calibrated[test_idx] = (logits[test_idx] + bias) / temperature
    return calibrated


def calibrate(logits: np.ndarray, dataset: Dataset, spec: RoutingSpec, folds: int = 5) -> Calibration:
    """Per-label bias and a temperature fitted on raw label logits [requests, labels] (maximum
    likelihood), with cross-validated figures before and after: uncalibrated, stratified folds and,
    with enough source|template groups, folds holding whole templates out.
    """
    labels = list(spec.router.labels)
    y = np.array(dataset.labels)
    target = np.array([labels.index(label) for label in y])
    groups = np.array([f"{item.source}|{item.template}" for item in dataset.items])
    cv = {"uncalibrated": figures(logits, y, spec, 1.0, dataset),
          "stratified": figures(_out_of_fold(logits, target, y, folds, None), y, spec, 1.0, dataset)}
    if len(set(groups)) >= folds:
        cv["unseen_templates"] = figures(_out_of_fold(logits, target, y, folds, groups), y, spec, 1.0, dataset)
    bias, temperature = fit_bias_temperature(logits, target)
    return Calibration({label: float(b) for label, b in zip(labels, bias)}, temperature, cv)
