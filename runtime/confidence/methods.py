"""The confidence methods behind one interface, as the pipeline and `confidence eval` run them.

A method scores an answer a tier produced; `options` may produce the answer itself (when the
request has a closed label set). Scales: `sampled_rating` and `self_rating` give a rating 1-10,
the others a probability in (0, 1]; the spec's threshold is on that scale and an answer below it
escalates. Which backends support which method is spec data (runtime/spec.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.confidence.head import answer_features, head_value, option_features
from slmkit.runtime.confidence.logprob import token_confidence
from slmkit.runtime.confidence.options import answer_prefix, answer_text, choose, extract_options
from slmkit.runtime.confidence.rating import expected_rating, rating_distribution, rating_or_default, should_escalate
from slmkit.runtime.prompts import render_rating_prompt
from slmkit.runtime.spec import ConfidenceCheckSpec


def _continuation(backend: Any, messages: list[dict[str, str]]) -> Any:
    """The backend's scoring context for `messages`; BackendError when its engine has no logits."""
    opener = getattr(backend, "continuation", None)
    if opener is None:
        raise BackendError(f"the {getattr(backend, 'name', 'tier')} engine exposes no logits")
    return opener(messages)


@dataclass
class Score:
    method: str
    value: float  # on the method's scale
    seconds: float  # what the check added to the answer's time
    details: dict[str, Any] = field(default_factory=dict)
    generation: Generation | None = None  # a second generation (sampled_rating), for the trace and its cost

    def escalate(self, threshold: float) -> bool:
        """Below the threshold escalates; the threshold itself is enough (seed: rating 7 stays)."""
        return should_escalate(self.value, threshold)


def sampled_rating(backend: Any, check: ConfidenceCheckSpec, question: str, answer: str) -> Score:
    """The seed's check: a second generation rating the answer, its text parsed (default when unreadable).

    Raises BackendError when the tier fails.
    """
    prompt = render_rating_prompt(check.prompt, question, answer)
    generation = backend.generate([{"role": "user", "content": prompt}], check.max_tokens)
    rating, parsed = rating_or_default(generation.text, check.unparsable_rating)
    return Score("sampled_rating", rating, generation.latency_ms / 1000,
                 {"text": generation.text, "parsed": parsed}, generation)


def self_rating(backend: Any, check: ConfidenceCheckSpec, question: str, answer: str) -> Score:
    """The seed's prompt, its rating read as the expected value over the tokens 1-10 (one
    prefill of the rating prompt, no sampled reply)."""
    start = time.perf_counter()
    prompt = render_rating_prompt(check.prompt, question, answer)
    with _continuation(backend, [{"role": "user", "content": prompt}]) as continuation:
        prefill = time.perf_counter() - start
        distribution = rating_distribution(continuation)
    return Score("self_rating", expected_rating(distribution), time.perf_counter() - start,
                 {"distribution": {str(r): round(p, 4) for r, p in distribution.items()},
                  "prefill_ms": round(prefill * 1000, 1)})


def token_logprob(check: ConfidenceCheckSpec, generation: Generation) -> Score:
    """From the answer's own token log-probabilities (the generation must carry them)."""
    if generation.token_logprobs is None or generation.token_margins is None:
        raise BackendError("the tier returned no token log-probabilities")
    value = token_confidence(check.feature, generation.token_logprobs, generation.token_margins)
    return Score("token_logprob", value, 0.0, {"feature": check.feature, "tokens": len(generation.token_logprobs)})


@dataclass
class OptionAnswer:
    generation: Generation
    score: Score  # the `options` method's: the chosen option's probability
    features: dict[str, float]  # what the `trained` head reads (head.option_features)


def trained(check: ConfidenceCheckSpec, features: dict[str, float], seconds: float = 0.0) -> Score:
    """The spec's fitted head on an answer's features (head.option_features or head.answer_features)."""
    if check.head is None:
        raise ValueError("confidence_check.head is missing")
    return Score("trained", head_value(check.head, features), seconds,
                 {"features": {name: round(features[name], 4) for name in check.head.features}})


def free_answer_features(generation: Generation) -> dict[str, float]:
    """head.answer_features of a generation that carries its token log-probabilities."""
    if generation.token_logprobs is None or generation.token_margins is None:
        raise BackendError("the tier returned no token log-probabilities")
    return answer_features(generation.token_logprobs, generation.token_margins, generation.input_tokens)


def answer_from_options(backend: Any, messages: list[dict[str, str]], prompt: str) -> OptionAnswer | None:
    """The option the tier scores best as the answer, or None when `prompt` offers no closed set
    (or the tier's tokenizer spells two labels the same).

    Raises BackendError when the tier fails.
    """
    options = extract_options(prompt)
    if options is None:
        return None
    start = time.perf_counter()
    prefix = answer_prefix(prompt)
    with _continuation(backend, messages) as continuation:
        prompt_tokens = continuation.prompt_tokens
        spelled = [tuple(continuation.tokenize(o)) for o in options]
        if not all(spelled) or len(set(spelled)) != len(spelled):  # the tokenizer cannot tell two labels apart
            return None
        if prefix:
            continuation.append(continuation.tokenize(prefix))
        choice = choose(continuation, spelled)
        text = answer_text(prompt, options[choice.index])
        tokens = len(continuation.tokenize(text))
    seconds = time.perf_counter() - start
    generation = Generation(text=text, input_tokens=prompt_tokens, output_tokens=tokens, latency_ms=seconds * 1000,
                            model=backend.tier.model)
    return OptionAnswer(generation, Score("options", choice.probability, seconds,
                                          {"options": len(options), "choice": options[choice.index]}),
                        option_features(choice.probability, choice.margin, len(options), prompt_tokens))


def score_answer(backend: Any, check: ConfidenceCheckSpec, question: str, generation: Generation) -> Score:
    """The spec's method on an answer the tier generated (for `options`, on a request without a
    closed set: its `fallback` method)."""
    method = check.fallback if check.method == "options" else check.method
    if method == "trained":
        return trained(check, free_answer_features(generation))
    if method == "token_logprob":
        return token_logprob(check, generation)
    if method == "self_rating":
        return self_rating(backend, check, question, generation.text)
    return sampled_rating(backend, check, question, generation.text)
