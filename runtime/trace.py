"""What happened to one request, step by step: the record `route`, `simulate` and `serve` show.

Built only from values the pipeline chose to record; headers and API keys never reach it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class GenerationStep:
    tier: str
    purpose: str              # "answer" | "rating" (the sampled_rating check's second generation)
    ok: bool
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    simulated: bool = False
    tokens_estimated: bool = False
    error: str | None = None
    text: str = ""
    ttft_ms: float | None = None


@dataclass
class Trace:
    request_id: str = ""
    router_input: dict = field(default_factory=dict)
    router: dict = field(default_factory=dict)
    policy: dict = field(default_factory=dict)
    steps: list[GenerationStep] = field(default_factory=list)
    confidence: list[dict] = field(default_factory=list)  # one per checked answer: method, value, threshold, escalate
    escalations: list[dict] = field(default_factory=list)
    fallbacks: list[dict] = field(default_factory=list)
    final_tier: str | None = None
    latency_ms: float = 0.0

    @property
    def cost_usd(self) -> float:
        return sum(step.cost_usd for step in self.steps)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cost_usd"] = self.cost_usd
        return data
