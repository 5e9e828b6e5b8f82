"""Tier engines behind one interface; each heavy engine is imported only when a tier uses it."""

from __future__ import annotations

from pathlib import Path

from slmkit.runtime.backends.base import Backend, BackendError, Generation
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.spec import TierSpec

__all__ = ["Backend", "BackendError", "Generation", "make_backend"]


def make_backend(tier: TierSpec, base_dir: Path) -> Backend:
    """The engine for one tier. Local model files are resolved relative to routing.json."""
    if tier.backend == "simulated":
        from slmkit.runtime.backends.simulated import SimulatedBackend

        return SimulatedBackend(tier)
    if tier.backend == "openai":
        from slmkit.runtime.backends.http import OpenAIBackend

        return OpenAIBackend(tier)
    if tier.backend == "anthropic":
        from slmkit.runtime.backends.http import AnthropicBackend

        return AnthropicBackend(tier)
    if tier.backend == "coreml":
        from slmkit.runtime.backends.coreml import CoreMLBackend

        return CoreMLBackend(tier, resolve_model_file(tier.model, base_dir))
    if tier.backend == "onnxruntime-genai":
        from slmkit.runtime.backends.genai import GenaiBackend

        return GenaiBackend(tier, resolve_model_file(tier.model, base_dir))
    from slmkit.runtime.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(tier, resolve_model_file(tier.model, base_dir))
