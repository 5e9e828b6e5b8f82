"""A trained linear head on disk: a small JSON header plus raw little-endian float16 weights.

Deliberately not .npz/pickle: Kotlin and Swift read it with a few lines, and the sha256 in the
header catches a truncated or swapped weights file before it routes anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmkit.runtime.errors import SlmkitError

FORMAT = "slmkit-router-head"


@dataclass
class LinearHead:
    """logits = x @ weights + bias; weights [n_inputs, n_labels]."""

    features: str            # the featurizer it was trained on ("hashed-v1")
    labels: list[str]
    weights: np.ndarray
    bias: np.ndarray
    buckets: int = 0         # hashed-v1: sparse inputs before the dense ones
    dense: tuple[str, ...] = ()
    info: dict | None = None  # training data, cross-validated figures
    # A head trained on task categories: category -> the routing label it counts toward (its
    # probabilities are summed per label); None when `labels` are the routing labels themselves.
    label_groups: dict[str, str] | None = None

    def logits(self, sparse: dict[int, float], dense: list[float] | np.ndarray) -> np.ndarray:
        """Sparse bucket weights plus dense values, through the head."""
        out = self.bias.astype(np.float64).copy()
        if sparse:
            idx = np.fromiter(sparse.keys(), dtype=np.int64, count=len(sparse))
            val = np.fromiter(sparse.values(), dtype=np.float64, count=len(sparse))
            out += val @ self.weights[idx].astype(np.float64)
        if len(dense):
            out += np.asarray(dense, dtype=np.float64) @ self.weights[self.buckets:].astype(np.float64)
        return out

    def save(self, path: Path) -> None:
        """Write `path` (JSON) and `path` with suffix .f16 next to it."""
        blob = np.ascontiguousarray(self.weights, dtype="<f2").tobytes()
        weights_file = path.with_suffix(".f16")
        weights_file.write_bytes(blob)
        header = {"format": FORMAT, "version": 1, "features": self.features, "labels": self.labels,
                  "buckets": self.buckets, "dense": list(self.dense), "shape": list(self.weights.shape),
                  "bias": [float(b) for b in self.bias], "weights_file": weights_file.name,
                  "weights_sha256": hashlib.sha256(blob).hexdigest(), "info": self.info or {}}
        if self.label_groups is not None:
            header["label_groups"] = self.label_groups
        path.write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")


def load_head(path: Path) -> LinearHead:
    """A router head: the JSON header (`format`, labels, shapes, training info) and the float16 weights
    file it names beside it. Raises SlmkitError when either is missing, malformed, of another format or
    fails its sha256.
    """
    try:
        header = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlmkitError(f"Router weights {path} not found.", hint="Train them with `slmkit router train`.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SlmkitError(f"{path} is not a router head (invalid JSON: {exc}).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SlmkitError(f"{path} is not a router head (format is not {FORMAT}).")
    weights_file = Path(path).parent / header["weights_file"]
    try:
        blob = weights_file.read_bytes()
    except FileNotFoundError:
        raise SlmkitError(f"{weights_file} (the weights {path} names) is missing.") from None
    if hashlib.sha256(blob).hexdigest() != header["weights_sha256"]:
        raise SlmkitError(f"{weights_file} does not match the sha256 in {path}: truncated or replaced.")
    shape = tuple(header["shape"])
    weights = np.frombuffer(blob, dtype="<f2").reshape(shape)
    return LinearHead(features=header["features"], labels=list(header["labels"]), weights=weights,
                      bias=np.asarray(header["bias"], dtype=np.float64), buckets=int(header["buckets"]),
                      dense=tuple(header["dense"]), info=header.get("info"), label_groups=header.get("label_groups"))
