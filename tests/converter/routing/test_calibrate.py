"""Fitting label_logits' bias and temperature: recovers known values, and the figures improve."""

from __future__ import annotations

import numpy as np
import pytest

from slmkit.converter.routing.calibrate import calibrate, fit_bias_temperature
from slmkit.runtime.data import Dataset, LabelledRequest
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.request import Request
from slmkit.runtime.spec import load_spec


def synthetic(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax((x + true_bias) / 2): the fit must find that bias and T = 2."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, 3))
    true = (logits + np.array([0.0, 1.5, -2.0])) / 2.0
    p = np.exp(true - true.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    target = np.array([rng.choice(3, p=row) for row in p])
    return logits, target


def test_recovers_bias_and_temperature() -> None:
    logits, target = synthetic()
    bias, temperature = fit_bias_temperature(logits, target)
    assert temperature == pytest.approx(2.0, rel=0.15)
    np.testing.assert_allclose(bias, [0.0, 1.5, -2.0], atol=0.4)


def test_calibration_fixes_a_router_biased_towards_one_label() -> None:
    spec = load_spec(default_spec_path())
    labels = ["simple", "medium", "complex"]
    logits, target = synthetic(900, seed=1)
    skewed = logits + np.array([4.0, 0.0, 0.0])  # like SmolLM2: "simple" nearly always wins raw
    items = [LabelledRequest(Request(f"r{i}"), labels[t], source=f"s{i % 10}", template="t") for i, t in enumerate(target)]
    result = calibrate(skewed, Dataset(items), spec, folds=3)
    assert result.cv["uncalibrated"]["accuracy"] < result.cv["stratified"]["accuracy"]
    assert result.bias["simple"] == 0.0 and result.bias["medium"] > 3 and set(result.cv) == {"uncalibrated", "stratified", "unseen_templates"}
