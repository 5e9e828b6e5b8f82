"""`slmkit shadow report`: shadow records (runtime/shadow/recorder.py) turned into what a cut-over
would have changed: the share that would have stayed on-device, the cost then vs now, the router's
tier mix against the tier that served, and examples where the two disagree (with the on-device
answer next to the served one where it was recorded). Read line by line: memory does not grow
with the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.evaluation import LATENCY_BIN_MS
from slmkit.runtime.paths import write_atomically
from slmkit.runtime.spec import RoutingSpec
from slmkit.runtime.validation import problem

EXAMPLES = 20           # disagreement examples kept for the report
EXAMPLE_CHARS = 600     # of each request and answer shown


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " …"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # JSON the recorder wrote: no "0.1" for 0.1


class Served(_Open):
    """What the app's tier did (recorder.served_summary)."""

    tier: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, allow_inf_nan=False)
    text: str | None = None


class RouterFields(_Open):
    """The parts of RouteDecision.to_dict the report reads."""

    label: str | None
    confidence: float = Field(allow_inf_nan=False)
    latency_ms: float = Field(ge=0, allow_inf_nan=False)


class OnDeviceAnswer(_Open):
    ok: bool
    output_tokens: int | None = Field(default=None, ge=0)
    text: str | None = None
    error: str | None = None


class Message(_Open):
    role: str
    content: object = None


class ShadowRecord(_Open):
    """One line of shadow-YYYY-MM-DD.jsonl as runtime/shadow/recorder.py writes it (version 1)."""

    version: Literal[1]
    time: str
    id: str
    messages: list[Message]
    served: Served
    router: RouterFields
    routed_tier: str
    on_device: OnDeviceAnswer | None = None
    unrecorded_before: int = Field(default=0, ge=0)


class FailedRecord(_Open):
    """A line the recorder wrote when it could not record a request (version 1)."""

    version: Literal[1]
    recording_error: str


def parse_record(data: object) -> ShadowRecord | FailedRecord:
    """One shadow line, validated before anything is counted. Raises ValueError "field F: why"."""
    try:
        if isinstance(data, dict) and "recording_error" in data:
            return FailedRecord.model_validate(data)
        return ShadowRecord.model_validate(data)
    except ValidationError as exc:
        raise ValueError(problem(exc)) from None


class ShadowTally:
    """Counts over shadow records for `spec` (its tiers price the routed choice)."""

    def __init__(self, spec: RoutingSpec) -> None:
        self.spec = spec
        self.local = {t.name for t in spec.tiers if t.on_device}
        self.n = self.failed_records = self.unrecorded = self.on_device_answers = self.on_device_failures = 0
        self.served_tiers: dict[str, int] = {}
        self.routed_tiers: dict[str, int] = {t.name: 0 for t in spec.tiers}
        self.served_usd = self.routed_usd = 0.0
        self.router_latency_bins: dict[int, int] = {}
        self.examples: list[dict] = []
        self.first = self.last = None

    def routed_cost(self, record: ShadowRecord) -> float:
        """USD the routed tier would have cost: what was paid when it is the tier that served, else its
        prices for the served request's tokens (the on-device answer's length where it was recorded)."""
        served = record.served
        if record.routed_tier == served.tier:
            return served.cost_usd
        tier = self.spec.tier(record.routed_tier)
        answer = record.on_device
        output = answer.output_tokens if answer is not None and answer.ok else None
        return (served.input_tokens * tier.price_in_per_mtok
                + (served.output_tokens if output is None else output) * tier.price_out_per_mtok) / 1e6

    def add(self, data: object) -> None:
        """Count one record (a parsed JSON line). Raises ValueError "field F: why" for a line that is
        not a version-1 shadow record or routes to a tier the spec lacks; nothing is counted then."""
        record = parse_record(data)
        if isinstance(record, FailedRecord):
            self.failed_records += 1
            return
        served, routed = record.served, record.routed_tier
        if routed not in self.routed_tiers:
            raise ValueError(f"field routed_tier: {routed!r} is not a tier of the spec")
        self.n += 1
        self.unrecorded += record.unrecorded_before
        self.served_tiers[served.tier] = self.served_tiers.get(served.tier, 0) + 1
        self.routed_tiers[routed] += 1
        self.served_usd += served.cost_usd
        self.routed_usd += self.routed_cost(record)
        bin_ = round(record.router.latency_ms / LATENCY_BIN_MS)
        self.router_latency_bins[bin_] = self.router_latency_bins.get(bin_, 0) + 1
        answer = record.on_device
        if answer is not None:
            self.on_device_answers += 1
            self.on_device_failures += not answer.ok
        self.first = min(self.first or record.time, record.time)
        self.last = max(self.last or record.time, record.time)
        if routed != served.tier and len(self.examples) < EXAMPLES:
            user = next((m.content for m in reversed(record.messages) if m.role == "user"), "")
            self.examples.append({"id": record.id, "time": record.time, "request": _cut(str(user)),
                                  "served_tier": served.tier, "served_answer": _cut(served.text or ""),
                                  "routed_tier": routed, "label": record.router.label,
                                  "confidence": record.router.confidence,
                                  "on_device_answer": _cut(answer.text or answer.error or "") if answer else None})

    def _latency(self, q: float) -> float | None:
        total, seen = sum(self.router_latency_bins.values()), 0
        for bin_ in sorted(self.router_latency_bins):
            seen += self.router_latency_bins[bin_]
            if seen >= max(1, -(-total * q // 100)):
                return round(bin_ * LATENCY_BIN_MS, 6)
        return None

    def figures(self) -> dict:
        """report.json: counts, tier mixes (served vs routed), on-device share, cost now vs routed, router latency."""
        share = (lambda count: count / self.n if self.n else None)
        return {"n": self.n, "period": {"first": self.first, "last": self.last},
                "failed_records": self.failed_records, "unrecorded_requests": self.unrecorded,
                "served_tier_mix": {t: share(c) for t, c in sorted(self.served_tiers.items())},
                "routed_tier_mix": {t: share(c) for t, c in self.routed_tiers.items()},
                "would_stay_on_device": share(sum(c for t, c in self.routed_tiers.items() if t in self.local)),
                "cost": {"served_usd": self.served_usd, "routed_usd": self.routed_usd,
                         "saved": 1 - self.routed_usd / self.served_usd if self.served_usd else None},
                "on_device_answers": {"recorded": self.on_device_answers, "failed": self.on_device_failures},
                "router_latency_ms": {"p50": self._latency(50), "p95": self._latency(95)},
                "disagreements": self.examples}


def read_records(folder: Path, tally: ShadowTally) -> list[str]:
    """Add every record of FOLDER/shadow-*.jsonl (or of one file) to `tally`; returns the lines
    skipped as "FILE line N: why". Raises SlmkitError when there is no record file."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.glob("shadow-*.jsonl"))
    if not files:
        raise SlmkitError(f"No shadow records in {folder}.", hint="Record some with `slmkit serve --shadow TIER --shadow-log DIR`.")
    skipped = []
    for path in files:
        with open(path, "rb") as handle:  # lines decoded one by one: a corrupt line is skipped, not fatal
            for number, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    tally.add(json.loads(raw.decode("utf-8")))
                except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                    skipped.append(f"{path.name} line {number}: {exc}")
    return skipped


def write_shadow_report(figures: dict, folder: Path) -> tuple[Path, Path]:
    """report.json then report.html (inline SVG, no scripts) in `folder`; returns both paths."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    write_atomically(json_path, json.dumps(figures, indent=2) + "\n")
    env = Environment(loader=PackageLoader("slmkit.runtime.shadow", "templates"), autoescape=select_autoescape())
    write_atomically(html_path, env.get_template("shadow.html.j2").render(s=figures, tier_mix=_tier_mix_svg(figures)))
    return json_path, html_path


def _tier_mix_svg(figures: dict) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    from slmkit.runtime.simulate.report import TIER_COLOURS, _svg

    tiers = list(dict.fromkeys([*figures["routed_tier_mix"], *figures["served_tier_mix"]]))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.38
    for offset, key, label, alpha in ((-width / 2, "served_tier_mix", "served (today)", 1.0),
                                      (width / 2, "routed_tier_mix", "routed (shadow)", 0.55)):
        values = [100 * (figures[key].get(t) or 0) for t in tiers]
        bars = ax.bar([i + offset for i in range(len(tiers))], values, width, label=label, alpha=alpha, edgecolor="black",
                      color=[TIER_COLOURS[i % len(TIER_COLOURS)] for i in range(len(tiers))])
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7, padding=2)
    ax.set_ylim(0, 118)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_ylabel("% of requests")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    return _svg(fig)
