"""What every router method returns, and the calibrated softmax they share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RouteDecision:
    """label None means the router output could not be read (the policy's unparsed tier)."""

    label: str | None
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    raw: str = ""
    latency_ms: float = 0.0
    method: str = ""
    tokens: int = 0
    conversation: dict | None = None  # runtime/router/conversation.py: both decisions and which one won

    def to_dict(self) -> dict:
        """The trace's `router` object: probabilities and confidence rounded to 6 places, latency in ms."""
        result = {"method": self.method, "label": self.label, "confidence": round(self.confidence, 6),
                  "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                  "raw": self.raw, "latency_ms": round(self.latency_ms, 3), "tokens": self.tokens}
        if self.conversation is not None:
            result["conversation"] = self.conversation
        return result


def softmax(logits: list[float], temperature: float = 1.0) -> list[float]:
    """Numerically stable softmax(logits / T); -inf logits get probability 0."""
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    if top == -math.inf:
        raise ValueError("every logit is -inf")
    exps = [math.exp(x - top) for x in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def decision_from_grouped_logits(labels: list[str], classes: list[str], logits: list[float], groups: dict[str, str],
                                 temperature: float = 1.0, method: str = "") -> RouteDecision:
    """Logits over finer `classes` (task categories), each counting toward the label `groups[class]`:
    p(label) = the sum of softmax(logits / T) over its classes; argmax label (first label wins a
    tie) with that probability as the confidence. `raw` names the likeliest class."""
    probs = softmax(logits, temperature)
    totals = {label: 0.0 for label in labels}
    for name, p in zip(classes, probs):
        totals[groups[name]] += p
    best = max(range(len(labels)), key=lambda i: (totals[labels[i]], -i))
    top = max(range(len(classes)), key=lambda i: (probs[i], -i))
    return RouteDecision(labels[best], totals[labels[best]], totals, raw=f"{classes[top]} {probs[top]:.6f}", method=method)


def decision_from_logits(labels: list[str], logits: list[float], temperature: float = 1.0,
                         method: str = "") -> RouteDecision:
    """Argmax label (first label wins a tie) with its calibrated probability as the confidence."""
    probs = softmax(logits, temperature)
    best = max(range(len(labels)), key=lambda i: (probs[i], -i))
    return RouteDecision(labels[best], probs[best], dict(zip(labels, probs)), method=method)
