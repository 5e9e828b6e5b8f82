"""The routing pipeline every surface runs: router -> policy -> tier -> confidence check -> escalate.

A request is never dropped: a failing or timed-out tier falls through to the next one, and if
every tier fails the Response says so (with each reason in the trace) instead of raising.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from slmkit.runtime.backends import Backend, BackendError, Generation, make_backend
from slmkit.runtime.backends.base import openai_finish_reason
from slmkit.runtime.confidence.methods import Score, answer_from_options, score_answer, trained
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.policy import choose_tier
from slmkit.runtime.prompts import request_router_input
from slmkit.runtime.request import ChatOptions, Request
from slmkit.runtime.router import Router, make_router
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import RoutingSpec, TierSpec, load_spec
from slmkit.runtime.stops import StopScanner, cut_at_stop, trim_logprobs
from slmkit.runtime.trace import GenerationStep, Trace


@dataclass
class Response:
    text: str
    tier: str | None            # None only when every tier failed
    trace: Trace
    error: str | None = None
    finish_reason: str = "stop"  # OpenAI's: "stop" (ended, or a stop sequence), "length" (max_tokens), "tool_calls"
    tool_calls: list[dict] | None = None  # OpenAI's choices[].message.tool_calls
    logprobs: list[dict] | None = None    # OpenAI's choices[].logprobs.content (None: not asked, or the tier has none)

    @property
    def ok(self) -> bool:
        return self.error is None


def answer_max_tokens(request: Request, tier: TierSpec) -> int:
    """The answer length a tier is asked for: the request's max_tokens, unless absent or not positive,
    then the tier's own (vectors/pipeline.jsonl pins it for the ports)."""
    return request.max_tokens if request.max_tokens is not None and request.max_tokens > 0 else tier.max_tokens


def cost_usd(tier_price_in: float, tier_price_out: float, generation: Generation) -> float:
    """USD of one generation at per-million-token input and output prices."""
    return (generation.input_tokens * tier_price_in + generation.output_tokens * tier_price_out) / 1e6


class Pipeline:
    def __init__(self, spec: RoutingSpec, base_dir: Path, backends: dict[str, Backend] | None = None,
                 router: Router | None = None) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self._backends: dict[str, Backend] = dict(backends or {})
        if router is None and spec.router.tier and spec.router.tier not in self._backends:
            self._backends[spec.router.tier] = make_backend(spec.tier(spec.router.tier), base_dir)  # misconfigured: raise
        self.router = router or make_router(spec, base_dir, self._backends)

    @classmethod
    def from_spec_file(cls, path: Path) -> Pipeline:
        return cls(load_spec(path), Path(path).resolve().parent)

    def backend(self, tier: str) -> Backend:
        """Engines load on first use: a request that stays on-device never opens a cloud client.

        A tier whose engine cannot load (missing model, Core ML off macOS) fails like any other
        tier failure, so the request falls through instead of being dropped.
        """
        if tier not in self._backends:
            try:
                self._backends[tier] = make_backend(self.spec.tier(tier), self.base_dir)
            except SlmkitError as exc:
                raise BackendError(f"cannot load: {str(exc).splitlines()[0]}") from None
            except Exception as exc:  # noqa: BLE001 - an engine that cannot start (native library, OS) is a tier failure
                raise BackendError(f"cannot load: {type(exc).__name__}: {exc}") from None
        return self._backends[tier]

    def route(self, request: Request, trace: Trace) -> str:
        """The tier the policy picks for the router's decision, recorded in `trace` (router input, decision,
        policy reason). A router whose engine fails gives no label: the policy's `unparsed_tier`.
        """
        system, user = request_router_input(request, self.spec.router.truncation)
        trace.router_input = {"system": system, "user": user, "user_chars": len(request.user)}
        try:
            decision = self.router.decide(request)
        except BackendError as exc:
            decision = RouteDecision(None, 0.0, raw=f"router failed: {exc.reason}", method=self.router.method)
        trace.router = decision.to_dict()
        choice = choose_tier(decision, self.spec.policy)
        trace.policy = {"tier": choice.tier, "reason": choice.reason}
        return choice.tier

    def _generate(self, tier: str, purpose: str, messages: list[dict], max_tokens: int,
                  trace: Trace, logprobs: bool = False, options: ChatOptions | None = None) -> Generation | None:
        start = time.perf_counter()
        try:
            generation = self.backend(tier).generate(messages, max_tokens, logprobs=logprobs, options=options)
        except BackendError as exc:
            trace.steps.append(GenerationStep(tier, purpose, False, (time.perf_counter() - start) * 1000, error=exc.reason))
            return None
        except Exception as exc:  # noqa: BLE001 - an engine's own bug or native error falls through like a failure
            trace.steps.append(GenerationStep(tier, purpose, False, (time.perf_counter() - start) * 1000,
                                              error=f"{type(exc).__name__}: {exc}"))
            return None
        trace.steps.append(self._step(tier, purpose, generation))
        return generation

    def _step(self, tier: str, purpose: str, generation: Generation) -> GenerationStep:
        spec = self.spec.tier(tier)
        return GenerationStep(tier, purpose, True, generation.latency_ms, generation.input_tokens, generation.output_tokens,
                              cost_usd(spec.price_in_per_mtok, spec.price_out_per_mtok, generation), generation.model,
                              generation.simulated, generation.tokens_estimated, text=generation.text,
                              ttft_ms=generation.ttft_ms)

    def _checked_answer(self, tier: str, request: Request, trace: Trace) -> tuple[Generation | None, bool]:
        """The tier's answer and whether its confidence check says escalate (confidence_check in the spec).

        A check that fails (the engine errs while scoring) escalates, as the seed's unreadable rating does.
        """
        check = self.spec.confidence_check
        messages, max_tokens = request.messages(), answer_max_tokens(request, self.spec.tier(tier))
        score: Score | None = None
        generation: Generation | None = None
        threshold = check.threshold
        if check.answers_from_options() and not request.required_features():  # a label walk, not JSON or tool calls
            start = time.perf_counter()
            try:
                option = answer_from_options(self.backend(tier), messages, request.user)
            except BackendError as exc:
                trace.steps.append(GenerationStep(tier, "answer", False, (time.perf_counter() - start) * 1000,
                                                  error=exc.reason))
                return None, False
            if option is not None:
                generation = option.generation
                score = option.score if check.method == "options" else trained(check, option.features, option.score.seconds)
                trace.steps.append(self._step(tier, "answer", generation))
            elif check.method == "options":
                threshold = check.fallback_threshold if check.fallback_threshold is not None else threshold
        if generation is None:
            generation = self._generate(tier, "answer", messages, max_tokens, trace,
                                        logprobs=check.needs_token_logprobs(), options=request.options)
            if generation is None:
                return None, False
        error = None
        if score is None:
            start = time.perf_counter()
            try:
                score = score_answer(self.backend(tier), check, request.user, generation)
            except BackendError as exc:
                error = exc.reason
                method = check.fallback if check.method == "options" else check.method
                unreadable = check.unparsable_rating if method == "sampled_rating" else -1.0
                if method == "sampled_rating":
                    trace.steps.append(GenerationStep(tier, "rating", False, (time.perf_counter() - start) * 1000,
                                                      error=exc.reason))
                score = Score(method, unreadable, time.perf_counter() - start, {"parsed": False})
            if score.generation is not None:
                trace.steps.append(self._step(tier, "rating", score.generation))
        escalate = score.escalate(threshold)
        trace.confidence.append({"tier": tier, "method": score.method, "value": score.value, "threshold": threshold,
                                 "escalate": escalate, "ms": round(score.seconds * 1000, 2), "error": error,
                                 **score.details})
        return generation, escalate

    def _fall_through(self, tier: str, tried: set[str], trace: Trace, reason: str) -> str | None:
        """The one fallback step: mark `tier` tried, record the move in the trace, and return its first
        untried fallback (None when none is left). Used for failures and for tiers routed past."""
        tried.add(tier)
        nxt = next((t for t in self.spec.fallbacks(tier) if t != tier and t not in tried), None)
        trace.fallbacks.append({"from": tier, "to": nxt, "reason": reason})
        return nxt

    def _capable(self, tier: str | None, request: Request, trace: Trace, tried: set[str]) -> str | None:
        """`tier`, or the first of its fallbacks that honours what the request needs (tools,
        response_format: Request.required_features); each tier routed past is a fallback in the trace."""
        needed = request.required_features()
        while tier is not None and tier not in tried:
            missing = [f for f in needed if not self.spec.tier(tier).can(f)]
            if not missing:
                return tier
            tier = self._fall_through(tier, tried, trace, f"skipped: cannot honour {' and '.join(missing)} "
                                                          f"({self.spec.tier(tier).backend} tier)")
        return None

    def capable_tiers(self, request: Request) -> list[str]:
        """The tiers that can answer `request` at all (the server refuses a request no tier can honour)."""
        return [t.name for t in self.spec.tiers if all(t.can(f) for f in request.required_features())]

    def _first_tier(self, request: Request, trace: Trace, force_tier: str | None) -> str:
        """The router's choice, or a tier the caller named (the server's `model`), which skips routing."""
        if force_tier is None:
            return self.route(request, trace)
        if force_tier not in {t.name for t in self.spec.tiers}:
            raise ValueError(f"unknown tier {force_tier!r}")
        trace.policy = {"tier": force_tier, "reason": "tier named by the request"}
        return force_tier

    def handle(self, request: Request, force_tier: str | None = None) -> Response:
        """Route (or use `force_tier`), answer, check confidence and escalate or fall through as the spec
        says; never raises for a tier failure: a request no tier could answer returns a Response with
        `error` set and the trace of every attempt.
        """
        start = time.perf_counter()
        trace = Trace(request_id=request.id)
        return self._answer(request, trace, self._first_tier(request, trace, force_tier), start, tried=set(),
                            checked=force_tier is None)

    def _answer(self, request: Request, trace: Trace, tier: str | None, start: float, tried: set[str],
                checked: bool = True) -> Response:
        """Generate on `tier`, falling through on failure and, when `checked`, escalating on low confidence
        (a tier the client named answers itself: no confidence escalation, fallback on failure only)."""
        answer: tuple[str, Generation] | None = None   # (tier, generation) of the latest answer
        while (tier := self._capable(tier, request, trace, tried)) is not None:
            tried.add(tier)
            escalate = False
            if checked and tier in self.spec.confidence_check.tiers:
                generation, escalate = self._checked_answer(tier, request, trace)
            else:
                generation = self._generate(tier, "answer", request.messages(),
                                            answer_max_tokens(request, self.spec.tier(tier)), trace,
                                            options=request.options)
            if generation is None:
                tier = self._fall_through(tier, tried, trace, trace.steps[-1].error)
                continue
            answer = (tier, generation)
            if escalate:
                nxt = self.spec.next_tier(tier)
                if nxt is not None and nxt not in tried:
                    check = trace.confidence[-1]
                    trace.escalations.append({"from": tier, "to": nxt, "method": check["method"],
                                              "confidence": check["value"]})
                    tier = nxt
                    continue
            break
        trace.latency_ms = (time.perf_counter() - start) * 1000
        if answer is None:
            reasons = "; ".join(f"{f['from']}: {f['reason']}" for f in trace.fallbacks)
            return Response("", None, trace, error=f"every tier failed ({reasons})")
        trace.final_tier = answer[0]
        return _response(answer[1], answer[0], trace, request)

    def stream(self, request: Request, force_tier: str | None = None) -> Iterator[str | Response]:
        """Answer text as it is generated, then the Response.

        Streams only when the routed tier's answer is final (no confidence check on it); otherwise the
        answer is held back until the check passes, since an escalation would replace it.
        """
        start = time.perf_counter()
        trace = Trace(request_id=request.id)
        tried: set[str] = set()
        tier = self._capable(self._first_tier(request, trace, force_tier), request, trace, tried)
        checked = force_tier is None
        if tier is None or (checked and tier in self.spec.confidence_check.tiers):
            response = self._answer(request, trace, tier, start, tried=tried, checked=checked)
            yield response.text
            yield response
            return
        generation = None
        scanner = StopScanner(request.options.stop)
        pieces: Generator[str | Generation, None, None] | None = None
        try:
            pieces = self.backend(tier).stream(request.messages(), answer_max_tokens(request, self.spec.tier(tier)),
                                               options=request.options)
            for piece in pieces:
                if isinstance(piece, Generation):
                    generation = piece
                elif text := scanner.feed(piece):
                    yield text
        except BackendError as exc:
            trace.steps.append(GenerationStep(tier, "answer", False, (time.perf_counter() - start) * 1000, error=exc.reason))
            nxt = self._fall_through(tier, tried, trace, exc.reason)
            response = self._answer(request, trace, nxt, start, tried=tried, checked=checked)
            yield response.text
            yield response
            return
        finally:
            if pieces is not None:
                pieces.close()  # a client gone mid-stream: the engine stops decoding and unlocks now
        if rest := scanner.flush():
            yield rest
        trace.steps.append(self._step(tier, "answer", generation))
        trace.final_tier = tier
        trace.latency_ms = (time.perf_counter() - start) * 1000
        yield _response(generation, tier, trace, request)

    async def ahandle(self, request: Request, force_tier: str | None = None) -> Response:
        """handle() off the event loop (local engines are blocking C calls)."""
        return await asyncio.to_thread(self.handle, request, force_tier)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()


def _response(generation: Generation, tier: str, trace: Trace, request: Request) -> Response:
    """The client's answer from a tier's Generation: text cut at the first stop sequence (logprobs cut with it)."""
    text, stopped = cut_at_stop(generation.text, request.options.stop)
    finish = "stop" if stopped else openai_finish_reason(generation.finish_reason)
    logprobs = None
    if request.options.top_logprobs is not None and generation.logprobs is not None:
        logprobs = trim_logprobs(generation.logprobs, len(text.encode("utf-8")))
    return Response(text, tier, trace, finish_reason=finish, tool_calls=generation.tool_calls, logprobs=logprobs)
