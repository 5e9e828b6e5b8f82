"""Core ML tiers off macOS: one clear error, and the pipeline falls through instead of failing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from slmkit.runtime.backends import make_backend
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import TierSpec

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="checks the behaviour off macOS")


def test_coreml_tier_off_macos_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "smol-coreml").mkdir()
    tier = TierSpec(name="on-device", backend="coreml", model="smol-coreml", on_device=True)
    with pytest.raises(SlmkitError, match="runs on macOS .and iOS. only"):
        make_backend(tier, tmp_path)


def test_pipeline_falls_through_from_a_coreml_tier_off_macos(tmp_path: Path) -> None:
    from slmkit.runtime.default import default_spec_path
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.request import Request
    from slmkit.runtime.spec import parse_spec

    (tmp_path / "smol-coreml").mkdir()
    data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    data["tiers"][0].update(backend="coreml", model="smol-coreml", threads=None)
    data["router"]["weights"] = str(default_spec_path().parent / "router-head.json")
    data["router"]["encoder"] = str(default_spec_path().parent / "encoder")
    response = Pipeline(parse_spec(data), tmp_path).handle(Request("Classify the sentiment: I love it, best purchase ever."))
    assert response.trace.policy["tier"] == "on-device" and response.tier == "mid"
    assert "macOS" in response.trace.fallbacks[0]["reason"]
