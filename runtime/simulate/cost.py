"""The seed's cost math as a tool: requests/day x tier mix x tokens x per-tier prices, against
sending everything to the priciest tier. Prices are dated data (`prices.yaml`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slmkit.runtime.errors import SlmkitError

DAYS_PER_MONTH = 30


class TierPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    model: str = ""
    input: float = Field(ge=0, description="USD per million input tokens")
    output: float = Field(ge=0, description="USD per million output tokens")

    def per_request(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6


class CostDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_day: int | None = None
    mix: list[float] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class PricePreset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    as_of: str
    description: str = ""
    source: str
    defaults: CostDefaults = CostDefaults()
    tiers: list[TierPrice] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> PricePreset:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names repeat: {names}")
        return self


def _presets_file() -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath("prices.yaml").read_text(encoding="utf-8"))


def preset_names() -> list[str]:
    """The built-in price presets' names (prices.yaml)."""
    return list(_presets_file()["presets"])


def load_prices(choice: str | None) -> PricePreset:
    """A built-in preset by name (default: the file's `default`), or a YAML/JSON price file."""
    data = _presets_file()
    name = choice or data["default"]
    if name in data["presets"]:
        return PricePreset(name=name, **data["presets"][name])
    path = Path(name)
    if not path.is_file():
        raise SlmkitError(f"Unknown price preset or file {name!r}.",
                          hint=f"Built-in presets: {', '.join(data['presets'])}; or pass a YAML/JSON file.")
    try:
        return PricePreset(name=path.name, **yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, TypeError) as exc:
        raise SlmkitError(f"{path} is not a price file ({exc}).") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SlmkitError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}.") from None


def parse_mix(text: str, tiers: int) -> list[float]:
    """"70/20/10" -> [0.7, 0.2, 0.1]; one share per priced tier, summing to 100."""
    try:
        parts = [float(p) for p in text.replace(",", "/").split("/")]
    except ValueError:
        raise SlmkitError(f"--mix {text!r} is not numbers separated by '/' (like 70/20/10).") from None
    if len(parts) != tiers:
        raise SlmkitError(f"--mix {text!r} gives {len(parts)} shares, the prices have {tiers} tiers.")
    if any(p < 0 for p in parts) or abs(sum(parts) - 100) > 1e-6:
        raise SlmkitError(f"--mix {text!r} must be non-negative percentages summing to 100 (they sum to {sum(parts):g}).")
    return [p / 100 for p in parts]


def cost_table(prices: PricePreset, requests_per_day: float, mix: list[float], input_tokens: float,
               output_tokens: float) -> dict:
    """Per-tier and total cost per day and month, the all-priciest-tier baseline and the savings."""
    rows = []
    for tier, share in zip(prices.tiers, mix):
        per_request = tier.per_request(input_tokens, output_tokens)
        per_day = per_request * requests_per_day * share
        rows.append({"tier": tier.name, "model": tier.model, "share": share, "requests_per_day": requests_per_day * share,
                     "usd_per_request": per_request, "usd_per_day": per_day, "usd_per_month": per_day * DAYS_PER_MONTH})
    priciest = max(prices.tiers, key=lambda t: t.per_request(input_tokens, output_tokens))
    baseline_day = priciest.per_request(input_tokens, output_tokens) * requests_per_day
    routed_day = sum(r["usd_per_day"] for r in rows)
    return {
        "prices": {"preset": prices.name, "as_of": prices.as_of, "source": prices.source},
        "requests_per_day": requests_per_day, "input_tokens": input_tokens, "output_tokens": output_tokens,
        "tiers": rows,
        "routed": {"usd_per_day": routed_day, "usd_per_month": routed_day * DAYS_PER_MONTH},
        "baseline": {"tier": priciest.name, "usd_per_day": baseline_day, "usd_per_month": baseline_day * DAYS_PER_MONTH},
        "savings": 1 - routed_day / baseline_day if baseline_day else 0.0,
    }
