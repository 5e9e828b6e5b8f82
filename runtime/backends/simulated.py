"""A stand-in cloud tier for offline runs: models latency and cost, never pretends to be a model."""

from __future__ import annotations

from collections.abc import Iterator

from slmkit.runtime.backends.base import Generation, RemoteBackend, estimate_tokens, stream_whole
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import SimulatedProfile, TierSpec


class SimulatedBackend(RemoteBackend):
    name = "simulated"

    def __init__(self, tier: TierSpec) -> None:
        self.tier = tier
        self.profile = tier.simulated or SimulatedProfile()

    def generate(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """A labelled stand-in answer with the profile's modelled latency (ttft_ms + tokens / tokens_per_s,
        in ms) and output tokens (at most `max_tokens`); token counts are estimates, never a model's.
        """
        prompt_tokens = sum(estimate_tokens(m["content"]) for m in messages)
        output_tokens = min(self.profile.output_tokens, max_tokens)
        latency = self.profile.ttft_ms + 1000.0 * output_tokens / self.profile.tokens_per_s
        text = (f"[simulated answer from tier '{self.tier.name}' ({self.tier.model or 'no model'}): "
                f"no model was called; {output_tokens} output tokens and {latency:.0f} ms are modelled]")
        return Generation(text=text, input_tokens=prompt_tokens, output_tokens=output_tokens, latency_ms=latency,
                          model=self.tier.model or "simulated", ttft_ms=self.profile.ttft_ms, simulated=True,
                          tokens_estimated=True, finish_reason="length" if output_tokens >= max_tokens else "stop")

    def stream(self, messages: list[dict], max_tokens: int, options: ChatOptions | None = None) -> Iterator[str | Generation]:
        return stream_whole(self, messages, max_tokens, options)

    def close(self) -> None:
        pass
