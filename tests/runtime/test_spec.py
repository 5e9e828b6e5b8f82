"""routing.json validation: the default loads, every mistake is one readable error, the schema is current."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.spec import json_schema, load_spec, parse_spec


def default_data() -> dict:
    return json.loads(default_spec_path().read_text(encoding="utf-8"))


def test_default_spec_is_the_seed_policy() -> None:
    spec = load_spec(default_spec_path())
    assert [t.name for t in spec.tiers] == ["on-device", "mid", "frontier"]
    assert {r.label: (r.tier, r.min_confidence) for r in spec.policy.routes} == {
        "simple": ("on-device", 0.8), "medium": ("mid", 0.8), "complex": ("frontier", 0.8)}
    assert spec.policy.low_confidence_tier == spec.policy.unparsed_tier == "mid"
    check = spec.confidence_check  # measured in docs/routing.md ("The confidence check")
    assert check.tiers == ["on-device"] and (check.method, check.threshold) == ("options", 0.47)
    assert (check.fallback, check.feature, check.fallback_threshold) == ("token_logprob", "first_margin", 0.79)
    assert spec.fallbacks("on-device") == ["mid", "frontier"] and spec.next_tier("frontier") is None


def test_a_spec_without_a_method_keeps_the_seed_check() -> None:
    data = default_data()
    data["confidence_check"] = {"tiers": ["on-device"]}
    check = parse_spec(data).confidence_check
    assert (check.method, check.threshold, check.unparsable_rating) == ("sampled_rating", 7, 5)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d["router"].update(temperture=1.0), "temperture"),
    (lambda d: d["policy"].update(low_confidence_tier="cloud"), "policy.low_confidence_tier names tier 'cloud'"),
    (lambda d: d["confidence_check"].update(tiers=["phone"]), "confidence_check.tiers names tier 'phone'"),
    (lambda d: d["router"].update(weights=None), "needs `weights`"),
    (lambda d: d["router"].update(method="label_logits", tier="mid", prompt="{user}"), "must be a local tier"),
    (lambda d: d["router"].update(method="label_logits", tier="on-device", prompt="no placeholder"), "containing {user}"),
    (lambda d: d["router"].update(method="probe"), "runs on a local model: name its `tier`"),
    (lambda d: d["router"].update(method="magic"), "router.method"),
    (lambda d: d["confidence_check"].update(tiers=["mid"], method="token_logprob", threshold=0.5),
     "token_logprob cannot run on tier 'mid' (simulated backend supports sampled_rating)"),
    (lambda d: d["confidence_check"].update(method="token_logprob", threshold=7), "outside token_logprob's scale 0-1"),
    (lambda d: d["confidence_check"].update(method="self_rating", threshold=0.5), "outside self_rating's scale 1-10"),
    (lambda d: d["confidence_check"].update(method="options", threshold=0.5, fallback_threshold=None),
     "method options needs fallback_threshold"),
    (lambda d: d["confidence_check"].update(method="token_logprob", threshold=0.5, feature="median"),
     "confidence_check.feature 'median'"),
    (lambda d: d["router"].update(labels=["easy", "hard"]), "labels must be"),
    (lambda d: d["policy"]["routes"].pop(), "policy.routes must give each label one tier"),
    (lambda d: d["tiers"].append(dict(d["tiers"][1])), "tier names must be unique"),
    (lambda d: d["tiers"][1].update(backend="openai"), "needs `base_url`"),
    (lambda d: d["tiers"][0].update(model=""), "needs `model`"),
    (lambda d: d["tiers"][2].update(price_in_per_mtok=-1), "price_in_per_mtok"),
    (lambda d: d["tiers"][2].update(name="Frontier Tier"), "tiers.2.name"),
    (lambda d: d["router"].update(bias={"trivial": 1.0}), "bias names unknown labels"),
    (lambda d: d["tiers"][0].update(features=["tools"]), "tier on-device: a llama.cpp tier cannot honour tools"),
    (lambda d: d["tiers"][0].update(features=["telepathy"]), "tiers.0.features"),
])
def test_invalid_specs_are_refused_with_the_reason(edit, message: str) -> None:
    data = default_data()
    edit(data)
    with pytest.raises(SlmkitError, match="routing spec|version") as error:
        parse_spec(data, "routing.json")
    assert message in str(error.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="No routing spec"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SlmkitError, match="not valid JSON"):
        load_spec(bad)


def test_exported_schema_is_current_and_validates_the_default() -> None:
    """The committed schema (what the ports read) must equal what the runtime exports."""
    committed = json.loads((resources.files("slmkit.runtime") / "schema" / "routing.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(), "run `slmkit router schema --output runtime/schema/routing.schema.json`"
    assert set(committed["required"]) == {"router", "policy", "tiers"}
    assert "confidence_check" in committed["properties"]
