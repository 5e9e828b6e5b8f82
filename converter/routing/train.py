"""Training and calibrating the classifier router on labelled requests (`slmkit router train`).

scikit-learn fits the linear head; the runtime then needs only numpy. Figures are out-of-fold:
stratified k-fold (requests like the training ones) and grouped by source+template (request
phrasings the head never saw), the second being the honest estimate for new traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from slmkit.runtime.data import Dataset
from slmkit.runtime.evaluation import evaluate
from slmkit.runtime.router import features
from slmkit.runtime.router.classifier import HASHED, HASHED_AND_ENCODER, request_features
from slmkit.runtime.router.decision import decision_from_logits
from slmkit.runtime.router.encoder import SentenceEncoder
from slmkit.runtime.router.head import LinearHead
from slmkit.runtime.router.probe import PROBE_FEATURES, model_identity, probe_vector
from slmkit.runtime.spec import RoutingSpec

BUCKETS = 1 << 16
TEMPERATURES = tuple(round(0.25 + 0.05 * i, 2) for i in range(96))  # 0.25 .. 5.0


@dataclass
class TrainResult:
    head: LinearHead
    temperature: float
    cv: dict          # figure sets by split kind


def design_matrix(dataset: Dataset, spec: RoutingSpec, encoder: SentenceEncoder | None = None,
                  buckets: int = BUCKETS, progress=None) -> sp.csr_matrix:
    """The runtime's own featurizer, row by row, so training sees exactly what routing computes."""
    data, indices, indptr = [], [], [0]
    width = buckets + len(features.DENSE_FEATURES) + (encoder.dim if encoder else 0)
    for item in dataset.items:
        sparse, dense = request_features(buckets, spec.router, item.request.system, item.request.user, encoder)
        indices.extend(sparse)
        data.extend(sparse.values())
        indices.extend(range(buckets, width))
        data.extend(dense)
        indptr.append(len(indices))
        if progress is not None:
            progress()
    return sp.csr_matrix((data, indices, indptr), shape=(len(dataset.items), width))


def _fit(X: sp.csr_matrix, y: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000).fit(X, y)


def _logits_in_label_order(model, X, labels: list[str]) -> np.ndarray:
    order = [list(model.classes_).index(label) for label in labels]
    return model.decision_function(X)[:, order]


def out_of_fold_logits(X, y, labels, C: float, folds: int, groups: np.ndarray | None, seed: int = 0) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    else:
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups)
    logits = np.zeros((X.shape[0], len(labels)))
    for train_idx, test_idx in splits:
        logits[test_idx] = _logits_in_label_order(_fit(X[train_idx], y[train_idx], C), X[test_idx], labels)
    return logits


def fit_temperature(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> float:
    """The T minimizing out-of-fold negative log-likelihood (confidence then means what it says)."""
    target = np.array([labels.index(t) for t in y])

    def nll(temperature: float) -> float:
        z = logits / temperature
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(target)), target].mean())

    return min(TEMPERATURES, key=nll)


def figures(logits: np.ndarray, y: np.ndarray, spec: RoutingSpec, temperature: float, dataset: Dataset) -> dict:
    decisions = [decision_from_logits(spec.router.labels, list(map(float, row)), temperature, "classifier") for row in logits]
    tokens = [max(1, len(item.request.user) // 4) for item in dataset.items]
    result = evaluate(list(y), decisions, spec, tokens)
    result.pop("latency_ms")
    return result


def probe_matrix(dataset: Dataset, spec: RoutingSpec, backend, progress=None) -> np.ndarray:
    """The router model's normalized hidden state per request, exactly as ProbeRouter computes it."""
    rows = []
    for item in dataset.items:
        rows.append(probe_vector(backend, spec.router, item.request.system, item.request.user))
        if progress is not None:
            progress()
    return np.stack(rows)


def train(dataset: Dataset, spec: RoutingSpec, C: float = 10.0, folds: int = 5, data_name: str = "",
          data_sha256: str = "", encoder: SentenceEncoder | None = None, probe_backend=None, progress=None) -> TrainResult:
    """Fit the classifier head (n-grams [+ encoder]) or, given a llama.cpp backend, the probe head."""
    labels = list(spec.router.labels)
    y = np.array(dataset.labels)
    if probe_backend is not None:
        X = probe_matrix(dataset, spec, probe_backend, progress)
        kind, buckets, dense = PROBE_FEATURES, 0, ()
        identity = {"encoder": None, **model_identity(probe_backend.path)}
    else:
        X = design_matrix(dataset, spec, encoder, progress=progress)
        kind, buckets, dense = (HASHED_AND_ENCODER if encoder else HASHED), BUCKETS, features.DENSE_FEATURES
        identity = {"encoder": encoder.config["source"] if encoder else None}
    groups = np.array([f"{item.source}|{item.template}" for item in dataset.items])
    random_oof = out_of_fold_logits(X, y, labels, C, folds, None)
    temperature = fit_temperature(random_oof, y, labels)
    cv = {"stratified": figures(random_oof, y, spec, temperature, dataset)}
    if len(set(groups)) >= folds:
        grouped_oof = out_of_fold_logits(X, y, labels, C, folds, groups)
        cv["unseen_templates"] = figures(grouped_oof, y, spec, temperature, dataset)
    model = _fit(X, y, C)
    order = [list(model.classes_).index(label) for label in labels]
    summary = {kind_: {k: v[k] for k in ("accuracy", "macro_f1", "simple_kept_on_device", "complex_on_device")}
               for kind_, v in cv.items()}
    head = LinearHead(kind, labels, model.coef_[order].T.astype(np.float16), model.intercept_[order], buckets, dense,
                      info={**identity, "data": data_name, "data_sha256": data_sha256, "examples": len(y), "C": C,
                            "folds": folds, "temperature": temperature, "cv": summary})
    return TrainResult(head, temperature, cv)


def write_bundle_router(result: TrainResult, spec_data: dict, out_dir: Path, router: dict,
                        head_name: str = "router-head.json") -> Path:
    """Write the head and a routing.json using it (the given spec, router section updated)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result.head.save(out_dir / head_name)
    return write_routing(spec_data, out_dir, {**router, "weights": head_name, "temperature": float(result.temperature)})


def write_routing(spec_data: dict, out_dir: Path, router: dict) -> Path:
    """routing.json in `out_dir`: the given spec with its router section updated."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_data = json.loads(json.dumps(spec_data))
    spec_data["router"].update(router)
    path = out_dir / "routing.json"
    path.write_text(json.dumps(spec_data, indent=2) + "\n", encoding="utf-8")
    return path
