"""vectors/pipeline.jsonl's harness: the whole pipeline over scripted engines, reported in the
vector's `expected` shape (the Swift and Kotlin GoldenVectors run the same rows the same way)."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

from slmkit.runtime.request import Request


class ScriptedTier:
    """vectors/pipeline.jsonl's engine: each call answers the script's next output (10 tokens in, 2 out),
    or every call fails with `fail` (the engine's own failure: BackendError), or raises `raise` (an error
    the engine did not expect: RuntimeError here, a platform exception or error in the ports); calls are
    logged as [tier, max_tokens]."""

    def __init__(self, tier: str, script: list[str] | dict, log: list[list]) -> None:
        self.tier, self.log = tier, log
        self.outputs = list(script) if isinstance(script, list) else []
        self.failure = script.get("fail") if isinstance(script, dict) else None
        self.unexpected = script.get("raise") if isinstance(script, dict) else None

    def generate(self, messages, max_tokens: int, logprobs: bool = False, options=None):
        from slmkit.runtime.backends.base import BackendError, Generation

        self.log.append([self.tier, max_tokens])
        if self.unexpected is not None:
            raise RuntimeError(self.unexpected)
        if self.failure is not None:
            raise BackendError(self.failure)
        if not self.outputs:
            raise BackendError("script exhausted")
        return Generation(text=self.outputs.pop(0), input_tokens=10, output_tokens=2, latency_ms=1.0, model=self.tier)

    def close(self) -> None:
        pass


def run_pipeline_vector(row: dict) -> dict:
    """What the pipeline does with the row's spec, router decision, request and scripted engines, in
    the vector's `expected` shape."""
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.spec import parse_spec
    from tests.runtime.fakes import FixedRouter

    spec = parse_spec(row["spec"])
    calls: list[list] = []
    scripts = {t.name: row["engines"].get(t.name, {"fail": "no engine"}) for t in spec.tiers}
    # {"load": why}: the engine cannot even start (its constructor raises, e.g. a native library missing).
    engines = {name: ScriptedTier(name, script, calls) for name, script in scripts.items()
               if not (isinstance(script, dict) and "load" in script)}
    unloadable = {name: script["load"] for name, script in scripts.items() if name not in engines}

    def make_backend(tier, base_dir):
        raise OSError(unloadable[tier.name])

    decision = row["decision"]
    pipeline = Pipeline(spec, Path("."), engines, FixedRouter(decision["label"], decision["confidence"]))
    request = Request(user=row["request"]["user"], max_tokens=row["request"].get("max_tokens"))
    try:
        with patch("slmkit.runtime.pipeline.make_backend", make_backend):
            response = pipeline.handle(request, force_tier=row["request"].get("force_tier"))
    except ValueError as exc:
        return {"error": str(exc)}
    if response.error is not None:
        return {"error": response.error}
    trace = response.trace
    return {"tier": response.tier, "text": response.text,
            "steps": [[s.tier, s.purpose, s.ok] for s in trace.steps], "calls": calls,
            "escalations": [[e["from"], e["to"]] for e in trace.escalations],
            "fallbacks": [[f["from"], f["to"]] for f in trace.fallbacks]}
