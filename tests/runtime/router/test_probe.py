"""The probe router's arithmetic and its model check, with a stand-in hidden state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Request
from slmkit.runtime.router.head import LinearHead
from slmkit.runtime.router.probe import PROBE_FEATURES, ProbeRouter, model_identity
from slmkit.runtime.spec import RouterSpec


class HiddenState:
    """Stands in for llama.cpp's embedding mode: a fixed vector per text length."""

    name = "llama.cpp"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.texts: list[str] = []

    def embedding(self, text: str) -> np.ndarray:
        self.texts.append(text)
        return np.array([3.0, 4.0, float(len(text) % 2)])


def setup(tmp_path: Path, identity_delta: int = 0) -> tuple[ProbeRouter, HiddenState]:
    model = tmp_path / "router.gguf"
    model.write_bytes(b"x" * 100)
    info = model_identity(model)
    info["model_bytes"] += identity_delta
    head = LinearHead(PROBE_FEATURES, ["simple", "medium", "complex"],
                      np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]], dtype=np.float16),
                      np.array([0.0, 0.1, 0.0]), info=info)
    head.save(tmp_path / "probe.json")
    backend = HiddenState(model)
    spec = RouterSpec(method="probe", tier="on-device", weights="probe.json",
                      truncation={"system_chars": 5, "user_chars": 10, "user_tail_chars": 0})
    return ProbeRouter(spec, tmp_path, backend), backend


def test_logits_are_the_head_over_the_normalized_hidden_state(tmp_path: Path) -> None:
    router, backend = setup(tmp_path)
    decision = router.decide(Request("0123456789abcdef", system="system prompt"))
    assert backend.texts == ["syste\n0123456789"]  # the truncated request, as the classifier reads it
    vector = np.array([3.0, 4.0, 0.0]) / 5.0
    expected = vector @ np.array([[1, 0, 0], [0, 1, 0], [0, 0, 5]]) + np.array([0.0, 0.1, 0.0])
    probabilities = np.exp(expected) / np.exp(expected).sum()
    assert decision.label == "medium" and decision.method == "probe"
    assert decision.probabilities["medium"] == pytest.approx(probabilities[1], rel=1e-6)


def test_a_head_trained_on_another_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="was trained on router.gguf .101 bytes"):
        setup(tmp_path, identity_delta=1)
