"""Training and cross-validating the classifier router on labelled requests (`slmkit router train|cv`).

scikit-learn fits the linear head; the runtime then needs only numpy. Figures are out-of-fold, by
one of three splits (`SPLITS`): leave-one-source-out (train on every other source, test on the one
left out: traffic from a source the router never saw, the honest estimate for an app's own
requests), grouped by source+template (phrasings never seen), and stratified k-fold (requests like
the training ones, which every linear router gets nearly right: show it only beside the first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from slmkit.runtime.data import Dataset
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.evaluation import by_group, evaluate
from slmkit.runtime.router import features
from slmkit.runtime.router.classifier import HASHED, HASHED_AND_ENCODER, request_features
from slmkit.runtime.router.decision import decision_from_grouped_logits, decision_from_logits
from slmkit.runtime.router.encoder import SentenceEncoder
from slmkit.runtime.router.head import LinearHead
from slmkit.runtime.router.probe import PROBE_FEATURES, model_identity, probe_vector
from slmkit.runtime.router.provenance import fingerprint_record
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
        sparse, dense = request_features(buckets, spec.router, item.request, encoder)
        indices.extend(sparse)
        data.extend(sparse.values())
        indices.extend(range(buckets, width))
        data.extend(dense)
        indptr.append(len(indices))
        if progress is not None:
            progress()
    return sp.csr_matrix((data, indices, indptr), shape=(len(dataset.items), width))


# Split name -> what it holds out (the names `router cv --by` takes and train-report.json uses).
SPLITS = {"source": "leave_one_source_out", "template": "unseen_templates", "random": "stratified"}
# Log-probability given to a label absent from a training fold (a held-out source may be the only one of its tier).
ABSENT_LABEL_LOGIT = -30.0


class _OneClass:
    """What a training fold holding a single class learns: that class, always (a held-out source
    can take every other example of its tier with it)."""

    def __init__(self, label: str) -> None:
        self.classes_ = np.array([label])

    def predict_log_proba(self, X) -> np.ndarray:
        return np.zeros((X.shape[0], 1))


def _fit(X: sp.csr_matrix, y: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    if len(set(y)) == 1:
        return _OneClass(str(y[0]))
    return LogisticRegression(C=C, max_iter=3000).fit(X, y)


def _logits_in_label_order(model, X, labels: list[str]) -> np.ndarray:
    """Log-probabilities [n, labels] (softmax gives the model's probabilities back)."""
    logits = np.full((X.shape[0], len(labels)), ABSENT_LABEL_LOGIT)
    log_proba = model.predict_log_proba(X)
    for column, label in enumerate(model.classes_):
        logits[:, labels.index(label)] = np.maximum(log_proba[:, column], ABSENT_LABEL_LOGIT)
    return logits


def split_groups(dataset: Dataset, by: str) -> np.ndarray | None:
    """The group of each request for split `by` (None for the stratified split)."""
    if by not in SPLITS:
        raise SlmkitError(f"No cross-validation split named {by!r}.", hint=f"Use one of: {', '.join(SPLITS)}.")
    if by == "random":
        return None
    return np.array([item.source if by == "source" else f"{item.source}|{item.template}" for item in dataset.items])


def checked_groups(dataset: Dataset, by: str, folds: int) -> np.ndarray | None:
    """`split_groups`, refusing data with too few groups to split that way (before any work)."""
    groups = split_groups(dataset, by)
    needed = 2 if by == "source" else folds
    if groups is not None and len(set(groups)) < needed:
        raise SlmkitError(f"Splitting by {by} needs at least {needed} distinct "
                          f"{'sources' if by == 'source' else 'source+template groups'}; the data has {len(set(groups))}.",
                          hint="Label each request's `source`, or use --by random.")
    return groups


def out_of_fold_logits(X, y, labels, C: float, folds: int, groups: np.ndarray | None, by: str = "template",
                       seed: int = 0, progress=None) -> np.ndarray:
    """Logits [n, labels] of each request from a head that never saw its fold: one fold per source
    for by="source", else `folds` folds (grouped when `groups` is given)."""
    from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
    elif by == "source":
        splits = LeaveOneGroupOut().split(X, y, groups)
    else:
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(X, y, groups)
    logits = np.zeros((X.shape[0], len(labels)))
    for train_idx, test_idx in splits:
        logits[test_idx] = _logits_in_label_order(_fit(X[train_idx], y[train_idx], C), X[test_idx], labels)
        if progress is not None:
            progress()
    return logits


TARGETS = ("category", "tier")


@dataclass(frozen=True)
class Target:
    """What a head predicts: `y` per request among `classes`; for task categories, `groups` maps
    each category to the routing label it counts toward (None when the classes are the labels)."""

    y: np.ndarray
    classes: list[str]
    groups: dict[str, str] | None = None


def head_target(dataset: Dataset, labels: list[str], target: str) -> Target:
    """The routing labels themselves ("tier"), or the requests' task categories ("category"): a
    finer target that transfers better to sources never seen (docs/routing.md), summed back into
    labels at routing time. Every request needs a category, and each category one label."""
    if target not in TARGETS:
        raise SlmkitError(f"No router target named {target!r}.", hint=f"Use one of: {', '.join(TARGETS)}.")
    if target == "tier":
        return Target(np.array(dataset.labels), list(labels))
    missing = sum(not item.category for item in dataset.items)
    if missing:
        raise SlmkitError(f"--target category needs a `task_category` on every request; {missing} of "
                          f"{len(dataset.items)} have none.", hint="Label them, or use --target tier.")
    groups: dict[str, str] = {}
    for item in dataset.items:
        if groups.setdefault(item.category, item.tier) != item.tier:
            raise SlmkitError(f"task_category {item.category!r} is labelled both {groups[item.category]} and {item.tier}.",
                              hint="A category must count toward one tier; fix the labels or use --target tier.")
    return Target(np.array([item.category for item in dataset.items]), sorted(groups), groups)


def fold_count(dataset: Dataset, by: str, folds: int) -> int:
    """How many heads split `by` fits (for progress bars)."""
    groups = checked_groups(dataset, by, folds)
    return len(set(groups)) if by == "source" and groups is not None else folds


def cross_validate(X, dataset: Dataset, spec: RoutingSpec, by: str, C: float = 10.0, folds: int = 5,
                   temperature: float | None = None, target: str = "tier", progress=None) -> dict:
    """Out-of-fold figures for split `by`: the pooled `evaluate()` figures, the temperature used
    (fitted on these logits unless given) and, for "source", figures per held-out source."""
    labels = list(spec.router.labels)
    y = np.array(dataset.labels)
    fit = head_target(dataset, labels, target)
    groups = checked_groups(dataset, by, folds)
    logits = out_of_fold_logits(X, fit.y, fit.classes, C, folds, groups, by, progress=progress)
    temperature = fit_temperature(logits, y, labels, fit) if temperature is None else temperature
    decisions = _decisions(logits, spec, temperature, fit)
    result = {"split": SPLITS[by], "target": target, "temperature": temperature,
              **_figures(decisions, y, spec, dataset)}
    if by == "source":
        result["by_group"] = by_group(list(y), decisions, spec, list(groups), _input_tokens(dataset))
    return result


def fit_temperature(logits: np.ndarray, y: np.ndarray, labels: list[str], target: Target | None = None) -> float:
    """The T minimizing the out-of-fold negative log-likelihood of the labels, with category
    probabilities summed per label as the router does (confidence then means what it says)."""
    classes = target.classes if target else labels
    member = np.array([[(target.groups[c] if target and target.groups else c) == label for label in labels]
                       for c in classes], dtype=np.float64)  # [classes, labels]
    truth = np.array([labels.index(t) for t in y])

    def nll(temperature: float) -> float:
        z = logits / temperature
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True) @ member
        return float(-np.log(np.maximum(p[np.arange(len(truth)), truth], 1e-300)).mean())

    return min(TEMPERATURES, key=nll)


def _decisions(logits: np.ndarray, spec: RoutingSpec, temperature: float, target: Target | None = None) -> list:
    labels = list(spec.router.labels)
    if target is None or target.groups is None:
        return [decision_from_logits(labels, list(map(float, row)), temperature, "classifier") for row in logits]
    return [decision_from_grouped_logits(labels, target.classes, list(map(float, row)), target.groups, temperature,
                                         "classifier") for row in logits]


def _input_tokens(dataset: Dataset) -> list[int]:
    return [max(1, len(item.request.user) // 4) for item in dataset.items]


def figures(logits: np.ndarray, y: np.ndarray, spec: RoutingSpec, temperature: float, dataset: Dataset) -> dict:
    """`evaluate()` figures of label logits [n, labels] at `temperature` (no latency)."""
    return _figures(_decisions(logits, spec, temperature), y, spec, dataset)


def _figures(decisions: list, y: np.ndarray, spec: RoutingSpec, dataset: Dataset) -> dict:
    result = evaluate(list(y), decisions, spec, _input_tokens(dataset))
    result.pop("latency_ms")
    return result


def probe_matrix(dataset: Dataset, spec: RoutingSpec, backend, progress=None) -> np.ndarray:
    """The router model's normalized hidden state per request, exactly as ProbeRouter computes it."""
    rows = []
    for item in dataset.items:
        rows.append(probe_vector(backend, spec.router, item.request))
        if progress is not None:
            progress()
    return np.stack(rows)


def features_for(dataset: Dataset, spec: RoutingSpec, encoder: SentenceEncoder | None = None, probe_backend=None,
                 progress=None) -> tuple[Any, dict]:
    """The design matrix and what describes it in the head: the probe's hidden states given a
    llama.cpp backend, else the classifier's n-grams [+ encoder]."""
    if probe_backend is not None:
        X = probe_matrix(dataset, spec, probe_backend, progress)
        return X, {"kind": PROBE_FEATURES, "buckets": 0, "dense": (),
                   "identity": {"encoder": None, **model_identity(probe_backend.path)}}
    X = design_matrix(dataset, spec, encoder, progress=progress)
    return X, {"kind": HASHED_AND_ENCODER if encoder else HASHED, "buckets": BUCKETS, "dense": features.DENSE_FEATURES,
               "identity": {"encoder": encoder.config["source"] if encoder else None}}


def train(dataset: Dataset, spec: RoutingSpec, C: float = 10.0, folds: int = 5,
          data_files: list[tuple[str, str]] = (), encoder: SentenceEncoder | None = None, probe_backend=None,
          target: str = "tier", progress=None) -> TrainResult:
    """Fit the classifier head (n-grams [+ encoder]) or, given a llama.cpp backend, the probe head.
    `data_files`: (file name, sha256) of the data, recorded in the head.

    Cross-validated figures, all at the temperature fitted on the stratified split (the one
    shipped): leave-one-source-out when the data has 3 or more sources (the estimate for traffic
    from elsewhere), unseen templates when there are `folds` source+template groups, stratified."""
    labels = list(spec.router.labels)
    fit = head_target(dataset, labels, target)  # refuses unusable categories before the features
    if len(set(fit.y)) < 2:
        raise SlmkitError(f"A router head needs requests of at least two classes; every request here is '{fit.y[0]}'.",
                          hint="Add labelled requests of the other tiers (slmkit's own data/routing/train.jsonl.gz "
                               "can be passed as a second --data).")
    X, described = features_for(dataset, spec, encoder, probe_backend, progress)
    stratified = cross_validate(X, dataset, spec, "random", C, folds, target=target)
    temperature = stratified["temperature"]  # the app's own traffic resembles its logs: calibrated there
    cv: dict = {}
    if len({item.source for item in dataset.items}) >= 3:
        cv[SPLITS["source"]] = cross_validate(X, dataset, spec, "source", C, folds, temperature, target)
    if len(set(split_groups(dataset, "template"))) >= folds:
        cv[SPLITS["template"]] = cross_validate(X, dataset, spec, "template", C, folds, temperature, target)
    cv[SPLITS["random"]] = stratified
    model = _fit(X, fit.y, C)
    order = [list(model.classes_).index(name) for name in fit.classes]
    summary = {kind_: {k: v[k] for k in ("accuracy", "macro_f1", "simple_kept_on_device", "complex_on_device")}
               for kind_, v in cv.items()}
    head = LinearHead(described["kind"], fit.classes, model.coef_[order].T.astype(np.float16), model.intercept_[order],
                      described["buckets"], described["dense"],
                      info={**described["identity"], "data": [{"file": name, "sha256": sha} for name, sha in data_files],
                            "examples": len(fit.y), "target": target, "C": C, "folds": folds, "temperature": temperature,
                            "cv": summary, "train_fingerprints": fingerprint_record(i.request for i in dataset.items)},
                      label_groups=fit.groups)
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
