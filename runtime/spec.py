"""`routing.json`: the one versioned file that drives routing on every platform.

The Python runtime, the simulator, the server and the Kotlin/Swift ports all read this file;
its JSON Schema (`slmkit router schema`) is what the ports validate against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.request import Feature

SPEC_VERSION = 1
LABELS = ("simple", "medium", "complex")
RouterMethod = Literal["classifier", "label_logits", "prompt_json", "probe"]
BackendName = Literal["llama.cpp", "onnxruntime-genai", "coreml", "openai", "anthropic", "simulated"]
LOCAL_BACKENDS = ("llama.cpp", "onnxruntime-genai", "coreml")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a threshold name must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Truncation(Strict):
    """How much of the request the router reads (the seed: 200 chars of system, 300 of user)."""

    system_chars: int = Field(200, ge=0)
    user_chars: int = Field(300, ge=0)
    user_tail_chars: int = Field(0, ge=0, description="Also read the last N chars of a longer user message.")
    history_turns: int = Field(0, ge=0, description="Conversations: also route the last user message together with "
                               "the N user messages before it; the costlier of the two routes wins (0: last message only).")
    history_chars: int = Field(200, ge=0, description="Characters read of each earlier user message.")


class RouterSpec(Strict):
    method: RouterMethod = "classifier"
    tier: str | None = Field(None, description="Local tier whose model runs the router (label_logits, prompt_json, probe).")
    weights: str | None = Field(None, description="Trained head, relative to routing.json (classifier, probe).")
    encoder: str | None = Field(None, description="Sentence-encoder folder, relative to routing.json, for heads trained with one.")
    labels: list[str] = Field(default_factory=lambda: list(LABELS))
    prompt: str = Field("", description="Router prompt; {system} and {user} are the truncated request.")
    answer_prefix: str = Field("", description="label_logits: text after the prompt, before the label word.")
    label_separator: str = Field(" ", description="label_logits: text before each label word (its first token is read).")
    bias: dict[str, float] = Field(default_factory=dict, description="Calibration: added to each label's logit.")
    truncation: Truncation = Field(default_factory=Truncation)
    temperature: float = Field(1.0, gt=0, description="Calibration: probabilities = softmax(logits / T).")
    max_tokens: int = Field(48, ge=1, description="prompt_json: tokens the router may generate.")
    default_confidence: float = Field(0.5, ge=0, le=1, description="prompt_json: confidence when the output gives none.")

    @model_validator(mode="after")
    def _method_needs(self) -> RouterSpec:
        if sorted(self.labels) != sorted(LABELS):
            raise ValueError(f"labels must be {list(LABELS)} in some order, got {self.labels}")
        if self.method in ("classifier", "probe") and not self.weights:
            raise ValueError(f"router method {self.method} needs `weights` (a file written by `slmkit router train`)")
        if self.method in ("label_logits", "prompt_json", "probe") and not self.tier:
            raise ValueError(f"router method {self.method} runs on a local model: name its `tier`")
        if self.method in ("label_logits", "prompt_json") and "{user}" not in self.prompt:
            raise ValueError(f"router method {self.method} needs a `prompt` containing {{user}}")
        if unknown := sorted(set(self.bias) - set(self.labels)):
            raise ValueError(f"bias names unknown labels {unknown}")
        return self


class Route(Strict):
    label: str
    tier: str
    min_confidence: float = Field(0.0, ge=0, le=1, description="Below this the request goes to low_confidence_tier.")


class PolicySpec(Strict):
    """The seed: simple and confident -> on-device; medium or unsure -> mid; complex -> frontier."""

    routes: list[Route]
    low_confidence_tier: str
    unparsed_tier: str = Field(description="Where a request goes when the router output cannot be parsed.")


ConfidenceMethod = Literal["sampled_rating", "self_rating", "token_logprob", "options", "trained"]
RATING_METHODS = ("sampled_rating", "self_rating")
# What each backend can run (runtime/confidence/methods.py): the rating prompt needs generation only;
# the others need the logits of the tier's own model, which every local engine exposes (llama.cpp's
# llama_get_logits_ith, onnxruntime-genai's Generator.get_logits, the Core ML program's `logits`).
ALL_CONFIDENCE_METHODS = ("sampled_rating", "self_rating", "token_logprob", "options", "trained")
CONFIDENCE_SUPPORT: dict[str, tuple[str, ...]] = {
    "llama.cpp": ALL_CONFIDENCE_METHODS,
    "onnxruntime-genai": ALL_CONFIDENCE_METHODS,
    "coreml": ALL_CONFIDENCE_METHODS,
    "openai": ("sampled_rating",),
    "anthropic": ("sampled_rating",),
    "simulated": ("sampled_rating",),
}


# What each backend can honour of a request's answer-shaping parameters (runtime/request.py FEATURES):
# llama.cpp constrains decoding with a GBNF grammar built from the JSON schema (llama.cpp's own
# json-schema-to-grammar, via llama-cpp-python's LlamaGrammar) and reads logprobs off the logits;
# OpenAI-compatible servers take tools, response_format and logprobs as sent; Anthropic's Messages API
# takes tools and gets JSON through one forced tool whose input_schema is the schema, and has no
# logprobs. onnxruntime-genai and Core ML tiers decode free text only. A tier's `features` may narrow
# this (an OpenAI-compatible server without tool support), never widen it.
TIER_FEATURES: dict[str, tuple[Feature, ...]] = {
    "llama.cpp": ("response_format", "logprobs"),
    "onnxruntime-genai": (),
    "coreml": (),
    "openai": ("tools", "response_format", "logprobs"),
    "anthropic": ("tools", "response_format"),
    "simulated": (),
}


class TrainedHead(Strict):
    """`trained`'s logistic head (runtime/confidence/head.py), written by `slmkit confidence train`:
    sigmoid(bias + sum weights[i] * (features[i] - center[i]) / scale[i])."""

    features: list[str] = Field(min_length=1, description="Names from runtime/confidence/head.py FEATURES.")
    weights: list[float]
    center: list[float]
    scale: list[float]
    bias: float
    fitted: dict[str, Any] = Field(default_factory=dict, description="How it was fitted: answers, sources, held-out AUROC.")

    @model_validator(mode="after")
    def _parallel(self) -> TrainedHead:
        from slmkit.runtime.confidence.head import FEATURES

        if unknown := [f for f in self.features if f not in FEATURES]:
            raise ValueError(f"confidence_check.head: unknown feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
        if not len(self.weights) == len(self.center) == len(self.scale) == len(self.features):
            raise ValueError("confidence_check.head: features, weights, center and scale must have the same length")
        if any(not s > 0 for s in self.scale):
            raise ValueError("confidence_check.head: every scale must be > 0")
        return self


class ConfidenceCheckSpec(Strict):
    """How a checked tier's answer is scored (runtime/confidence/); below `threshold` escalates.

    Written without `method`, a spec keeps the seed's check (`sampled_rating`, threshold 7).
    """

    tiers: list[str] = Field(default_factory=list, description="Tiers whose answers are checked (empty: off).")
    method: ConfidenceMethod = Field("sampled_rating", description="runtime/confidence/__init__.py lists the methods.")
    threshold: float = Field(7, ge=0, le=10, description="Ratings: 1-10; token_logprob, options and trained: a probability 0-1.")
    feature: str = Field("mean", description="token_logprob: which statistic of the answer's tokens (runtime/confidence/logprob.py).")
    head: TrainedHead | None = Field(None, description="trained: the fitted head (slmkit confidence train writes it).")
    fallback: Literal["sampled_rating", "self_rating", "token_logprob"] = Field(
        "token_logprob", description="options: the method for requests without a closed label set.")
    fallback_threshold: float | None = Field(None, ge=0, le=10, description="options: the fallback method's threshold.")
    unparsable_rating: float = Field(5, ge=1, le=10)
    max_tokens: int = Field(8, ge=1, description="sampled_rating: tokens of the rating reply.")
    prompt: str = Field(
        "Question: {question}\n\nAnswer: {answer}\n\n"
        "On a scale of 1 to 10, how confident are you that this answer is correct and complete? "
        "Reply with a single number.",
        description="Rating methods: {question} and {answer} are filled in.",
    )

    @model_validator(mode="after")
    def _scales(self) -> ConfidenceCheckSpec:
        from slmkit.runtime.confidence.logprob import FEATURES

        def check(method: str, threshold: float, where: str) -> None:
            low, high = (1, 10) if method in RATING_METHODS else (0, 1)
            if not low <= threshold <= high:
                raise ValueError(f"confidence_check.{where} {threshold:g} is outside {method}'s scale {low}-{high}")

        check(self.method, self.threshold, "threshold")
        if self.method == "options":
            if self.fallback_threshold is None:
                raise ValueError("confidence_check: method options needs fallback_threshold (for requests without options)")
            check(self.fallback, self.fallback_threshold, "fallback_threshold")
        if self.method == "trained" and self.head is None:
            raise ValueError("confidence_check: method trained needs `head` (fit one with `slmkit confidence train`)")
        if self.feature not in FEATURES:
            raise ValueError(f"confidence_check.feature {self.feature!r} is not one of {', '.join(FEATURES)}")
        return self

    def methods(self) -> tuple[str, ...]:
        """Every method this check may run."""
        return (self.method, self.fallback) if self.method == "options" else (self.method,)

    def answers_from_options(self) -> bool:
        """Whether a request with a closed label set is answered by the option walk."""
        return self.method in ("options", "trained")

    def needs_token_logprobs(self) -> bool:
        """Whether generated answers must carry their tokens' log-probabilities."""
        return any(m in ("token_logprob", "trained") for m in self.methods())


class SimulatedProfile(Strict):
    """How the `simulated` backend models a cloud tier: latency = ttft + tokens / speed."""

    ttft_ms: float = Field(400, ge=0)
    tokens_per_s: float = Field(80, gt=0)
    output_tokens: int = Field(200, ge=1, description="Answer length it pretends to produce.")


class TierSpec(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    backend: BackendName
    model: str = Field("", description="Local: model file/folder (relative to routing.json) or embedded:NAME; cloud: model id.")
    on_device: bool = False
    base_url: str | None = None
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (never the key itself).")
    price_in_per_mtok: float = Field(0.0, ge=0)
    price_out_per_mtok: float = Field(0.0, ge=0)
    context_tokens: int = Field(4096, ge=16)
    max_tokens: int = Field(256, ge=1)
    timeout_s: float = Field(60, gt=0)
    threads: int | None = Field(None, ge=1, description="llama.cpp threads (1 is safer on a busy machine).")
    prompt_cache: bool = Field(False, description="llama.cpp: reuse the KV cache of the previous request's matching "
                               "prompt prefix (faster prefill, but llama.cpp logits are not bit-identical across batch "
                               "splits, so a greedy answer may then differ from a fresh run's; off: same input, same output).")
    fallback: list[str] | None = Field(None, description="Tiers tried when this one fails (default: the tiers after it, then those before it, nearest first).")
    simulated: SimulatedProfile | None = None
    features: list[Feature] | None = Field(None, description="What this tier honours of tools, response_format and "
                                           "logprobs (default: all its backend can; runtime/spec.py TIER_FEATURES).")

    def expected_output_tokens(self, default: int) -> int:
        """The answer length assumed when this tier is priced without running it: what its
        `simulated` profile produces, else `default` (simulate --output-tokens, router eval's 200)."""
        return self.simulated.output_tokens if self.simulated else default

    def expected_usd(self, input_tokens: int, default_output_tokens: int, requests: int = 1) -> float:
        """USD for answering `requests` requests of `input_tokens` tokens in all here without running
        them, at this tier's per-million-token prices (router eval, simulate --router-only, sweeps)."""
        return (input_tokens * self.price_in_per_mtok
                + requests * self.expected_output_tokens(default_output_tokens) * self.price_out_per_mtok) / 1e6

    def can(self, feature: Feature) -> bool:
        """Whether this tier honours `feature` (runtime/request.py FEATURES)."""
        return feature in (TIER_FEATURES[self.backend] if self.features is None else self.features)

    @model_validator(mode="after")
    def _backend_needs(self) -> TierSpec:
        if self.features is not None and (beyond := [f for f in self.features if f not in TIER_FEATURES[self.backend]]):
            raise ValueError(f"tier {self.name}: a {self.backend} tier cannot honour {', '.join(beyond)} "
                             f"(it can: {', '.join(TIER_FEATURES[self.backend]) or 'none of tools, response_format, logprobs'})")
        if self.backend in LOCAL_BACKENDS and not self.model:
            raise ValueError(f"tier {self.name}: a {self.backend} tier needs `model`")
        if self.backend in ("openai", "anthropic") and not self.model:
            raise ValueError(f"tier {self.name}: a {self.backend} tier needs `model` (the provider's model id)")
        if self.backend == "openai" and not self.base_url:
            raise ValueError(f"tier {self.name}: an openai tier needs `base_url` (e.g. https://api.openai.com/v1)")
        return self


class RoutingSpec(Strict):
    version: Literal[1] = SPEC_VERSION
    name: str = "routing"
    router: RouterSpec
    policy: PolicySpec
    confidence_check: ConfidenceCheckSpec = Field(default_factory=ConfidenceCheckSpec)
    tiers: list[TierSpec] = Field(min_length=1, description="Cheapest first; escalation moves down this list.")

    @model_validator(mode="after")
    def _names_resolve(self) -> RoutingSpec:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        known = set(names)
        refs = [("policy.low_confidence_tier", self.policy.low_confidence_tier),
                ("policy.unparsed_tier", self.policy.unparsed_tier)]
        refs += [(f"policy.routes[{r.label}]", r.tier) for r in self.policy.routes]
        refs += [("confidence_check.tiers", t) for t in self.confidence_check.tiers]
        refs += [(f"tiers[{t.name}].fallback", f) for t in self.tiers for f in t.fallback or []]
        if self.router.tier:
            refs.append(("router.tier", self.router.tier))
        for where, name in refs:
            if name not in known:
                raise ValueError(f"{where} names tier {name!r}; the tiers are {names}")
        for name in self.confidence_check.tiers:
            backend = self.tier(name).backend
            unsupported = [m for m in self.confidence_check.methods() if m not in CONFIDENCE_SUPPORT[backend]]
            if unsupported:
                raise ValueError(f"confidence_check.method {unsupported[0]} cannot run on tier {name!r} ({backend} backend "
                                 f"supports {', '.join(CONFIDENCE_SUPPORT[backend])})")
        if self.router.tier and self.tier(self.router.tier).backend not in LOCAL_BACKENDS:
            raise ValueError(f"router.tier {self.router.tier!r} must be a local tier ({', '.join(LOCAL_BACKENDS)})")
        route_labels = [r.label for r in self.policy.routes]
        if sorted(route_labels) != sorted(self.router.labels):
            raise ValueError(f"policy.routes must give each label one tier: labels {self.router.labels}, routes {route_labels}")
        return self

    def tier(self, name: str) -> TierSpec:
        return next(t for t in self.tiers if t.name == name)

    def local_paths(self) -> list[tuple[str, str]]:
        """(field, path) of every file or folder this spec names on disk: the router's weights and
        encoder, each local tier's model (`embedded:NAME` models live in slmkit's package, not here)."""
        from slmkit.runtime.models.embedded import EMBEDDED_PREFIX

        found = [("router.weights", self.router.weights), ("router.encoder", self.router.encoder)]
        found += [(f"tiers[{t.name}].model", t.model) for t in self.tiers
                  if t.backend in LOCAL_BACKENDS and not t.model.startswith(EMBEDDED_PREFIX)]
        return [(field, path) for field, path in found if path]

    def costliest_tier(self, default_output_tokens: int) -> TierSpec:
        """The tier a 1,000-token request costs most on: the all-one-tier baseline that cost
        savings are measured against (the seed's "everything to the frontier model")."""
        return max(self.tiers, key=lambda t: t.expected_usd(1000, default_output_tokens))

    def fallbacks(self, name: str) -> list[str]:
        """Tiers to try, in order, when `name` fails: its own list, else every tier after it and
        then the ones before it, nearest first (a failing frontier still gets a mid-tier answer)."""
        tier = self.tier(name)
        if tier.fallback is not None:
            return list(tier.fallback)
        names = [t.name for t in self.tiers]
        index = names.index(name)
        return names[index + 1:] + names[:index][::-1]

    def next_tier(self, name: str) -> str | None:
        """Escalation target after a low self-rating: the next tier down the list."""
        names = [t.name for t in self.tiers]
        index = names.index(name)
        return names[index + 1] if index + 1 < len(names) else None


def load_spec(path: Path) -> RoutingSpec:
    """Read and validate routing.json; every problem is one readable message."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlmkitError(f"No routing spec at {path}.", hint="Pass --spec routing.json or --bundle DIR.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SlmkitError(f"{path} is not valid JSON: {exc}") from None
    return parse_spec(data, source=str(path))


def parse_spec(data: object, source: str = "routing spec") -> RoutingSpec:
    """A validated RoutingSpec from parsed JSON. Raises SlmkitError naming `source`, for a version this
    slmkit does not read or every schema problem found (path: message).
    """
    if isinstance(data, dict) and data.get("version") not in (None, SPEC_VERSION):
        raise SlmkitError(f"{source} has version {data.get('version')!r}; this slmkit reads version {SPEC_VERSION}.")
    try:
        return RoutingSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise SlmkitError(f"{source} is not a valid routing spec: {problems}") from None


def json_schema() -> dict:
    """The schema the mobile ports validate routing.json against."""
    schema = RoutingSpec.model_json_schema()
    schema["$id"] = f"https://slmkit.dev/schema/routing-v{SPEC_VERSION}.json"
    return schema
