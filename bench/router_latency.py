"""Routing-decision latency of each router method on this CPU, next to the seed's naive router.

The seed routes by letting the SLM generate {"complexity", "confidence"} from the whole prompt,
with nothing cached between requests. slmkit's methods: `classifier` (the shipped default,
hashed n-grams + trained head), `label_logits` (one forward pass, fixed instruction prefix kept
in llama.cpp's KV cache) and `prompt_json` with llama.cpp's prompt-prefix reuse. Requests are a
seeded sample of the shipped training data. p50/p95 in milliseconds; ratio = seed p50 / method p50.
Usage:
    python bench/router_latency.py [--model smollm2-135m] [--requests 40] [--threads 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import time
from pathlib import Path

from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.data import parse_record
from slmkit.runtime.default import METHOD_PROMPTS, default_spec_path
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.request import Request
from slmkit.runtime.router.classifier import ClassifierRouter
from slmkit.runtime.router.label_logits import LabelLogitsRouter
from slmkit.runtime.router.prompt_json import PromptJsonRouter
from slmkit.runtime.spec import RouterSpec, TierSpec, load_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "routing" / "train.jsonl.gz"


def sample_requests(count: int, seed: int) -> list[Request]:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    random.Random(seed).shuffle(records)
    return [parse_record(r, ("simple", "medium", "complex")).request for r in records[:count]]


class SeedRouter:
    """The seed's way: generate the JSON from the full prompt, resetting the context every time."""

    method = "seed: prompt_json, no cache"

    def __init__(self, spec: RouterSpec, backend: LlamaCppBackend) -> None:
        self.inner = PromptJsonRouter(spec, backend)
        self.backend = backend

    def decide(self, request: Request):
        self.backend.generator.reset()
        return self.inner.decide(request)


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="embedded model that runs the model-based routers")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    requests = sample_requests(args.requests, args.seed)
    tier = TierSpec(name="on-device", backend="llama.cpp", model=f"embedded:{args.model}", on_device=True,
                    context_tokens=2048, threads=args.threads)
    backend = LlamaCppBackend(tier, resolve_model_file(tier.model, Path.cwd()))
    json_spec = RouterSpec(method="prompt_json", tier="on-device", prompt=METHOD_PROMPTS["prompt_json"], max_tokens=24)
    default = load_spec(default_spec_path())
    routers = [
        SeedRouter(json_spec, backend),
        ClassifierRouter(default.router, default_spec_path().parent),
        LabelLogitsRouter(RouterSpec(method="label_logits", tier="on-device", prompt=METHOD_PROMPTS["label_logits"]), backend),
        PromptJsonRouter(json_spec, backend),
    ]
    rows = []
    for router in routers:
        router.decide(requests[0])  # warm-up: model load, prefix into the cache
        times = []
        for request in requests:
            start = time.perf_counter()
            router.decide(request)
            times.append((time.perf_counter() - start) * 1000)
        rows.append((router.method, *percentiles(times)))
    backend.close()
    seed_p50 = rows[0][1]
    print(f"{args.requests} requests from {DATA.name} (seed {args.seed}), router model {args.model}, "
          f"{args.threads} threads; prompt_json generates at most {json_spec.max_tokens} tokens")
    print(f"{'method':32s} {'p50 ms':>9s} {'p95 ms':>9s} {'seed p50 / p50':>15s}")
    for method, p50, p95 in rows:
        print(f"{method:32s} {p50:9.2f} {p95:9.2f} {seed_p50 / p50:15.1f}")


if __name__ == "__main__":
    main()
