"""A trained linear head on disk: a small JSON header plus raw little-endian float16 weights.

Deliberately not .npz/pickle: Kotlin and Swift read it with a few lines, and the sha256 in the
header catches a truncated or swapped weights file before it routes anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.validation import RelativePath, inside, read_json, validated

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


class HeadHeader(BaseModel):
    """The JSON header `LinearHead.save` writes; `load_head` refuses anything else."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["slmkit-router-head"]
    version: StrictInt = Field(ge=1, le=1)  # 1, not 1.0 or true
    features: str = Field(min_length=1)
    labels: list[str] = Field(min_length=2)
    buckets: StrictInt = Field(ge=0)
    dense: list[str]
    shape: tuple[StrictInt, StrictInt]
    bias: list[StrictFloat]  # numbers, not "0.1"
    weights_file: RelativePath
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    info: dict[str, Any] = {}
    label_groups: dict[str, str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HeadHeader:
        inputs, outputs = self.shape
        if inputs < self.buckets + len(self.dense):   # the rest, if any, are the sentence encoder's dimensions
            raise ValueError(f"shape {list(self.shape)} has fewer input rows than {self.buckets} buckets + "
                             f"{len(self.dense)} dense inputs")
        if outputs != len(self.labels) or len(self.bias) != len(self.labels):
            raise ValueError(f"shape {list(self.shape)} and {len(self.bias)} biases need one column per label ({len(self.labels)})")
        if len({unicodedata.normalize("NFC", label) for label in self.labels}) != len(self.labels):
            raise ValueError("labels must be unique, also after Unicode normalization (the ports compare text that way)")
        if self.features.startswith("hashed") and self.buckets < 1:
            raise ValueError("hashed features need at least one bucket")
        if not all(math.isfinite(b) for b in self.bias):
            raise ValueError("biases must be finite numbers")
        return self


def load_head(path: Path) -> LinearHead:
    """A router head: the JSON header (`format`, labels, shapes, training info; HeadHeader) and the
    float16 weights file it names beside it. Raises SlmkitError when either is missing, malformed,
    of another format, names a file outside its folder, has the wrong size or fails its sha256.
    """
    data = read_json(path, "a router head (JSON)", hint="Train one with `slmkit router train`.")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SlmkitError(f"{path} is not a router head (format is not {FORMAT}).")
    header = validated(HeadHeader, data, path)
    weights_file = inside(Path(path).parent, header.weights_file, path)
    try:
        blob = weights_file.read_bytes()
    except FileNotFoundError:
        raise SlmkitError(f"{weights_file} (the weights {path} names) is missing.") from None
    except OSError as exc:
        raise SlmkitError(f"Cannot read {weights_file}: {exc}") from None
    return head_from(data, blob, path, weights_name=str(weights_file))


def head_from(data: object, blob: bytes, source: Path | str, weights_name: str = "The weights") -> LinearHead:
    """The head a header (parsed JSON) and its float16 weights describe: HeadHeader's checks, then the
    weights' sha256 and size (vectors/router_head.jsonl pins which headers the ports must refuse).
    Raises SlmkitError naming `source` (and `weights_name`) and the first problem."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SlmkitError(f"{source} is not a router head (format is not {FORMAT}).")
    header = validated(HeadHeader, data, source)
    if hashlib.sha256(blob).hexdigest() != header.weights_sha256:
        raise SlmkitError(f"{weights_name} does not match the sha256 in {source}: truncated or replaced.")
    if len(blob) != 2 * header.shape[0] * header.shape[1]:
        raise SlmkitError(f"{weights_name} holds {len(blob)} bytes; shape {list(header.shape)} needs "
                          f"{2 * header.shape[0] * header.shape[1]} (float16).")
    weights = np.frombuffer(blob, dtype="<f2").reshape(header.shape)
    return LinearHead(features=header.features, labels=list(header.labels), weights=weights,
                      bias=np.asarray(header.bias, dtype=np.float64), buckets=header.buckets,
                      dense=tuple(header.dense), info=header.info, label_groups=header.label_groups)
