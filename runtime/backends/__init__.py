"""Tier engines behind one interface, looked up by the tier's `backend` name in the
`slmkit.backends` entry points (runtime/plugins.py); each engine's library is imported only when a
tier uses it."""

from __future__ import annotations

from pathlib import Path

from slmkit.runtime.backends.base import Backend, BackendError, Generation
from slmkit.runtime.plugins import load_plugin
from slmkit.runtime.spec import TierSpec

__all__ = ["Backend", "BackendError", "Generation", "make_backend"]

GROUP = "slmkit.backends"


def make_backend(tier: TierSpec, base_dir: Path) -> Backend:
    """The engine for one tier (`Backend.from_tier`); local model files resolve relative to
    routing.json's folder `base_dir`. Raises SlmkitError when it cannot run here."""
    return load_plugin(GROUP, tier.backend, "backend").from_tier(tier, base_dir)
