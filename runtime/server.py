"""`slmkit serve`: an OpenAI-compatible endpoint over the same Pipeline the simulator and the
ports run. `model: "auto"` routes; a tier's name forces that tier. The routing trace comes back
in the `x-slmkit-trace` header (compact, no request text) and in the response's `slmkit` field."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from fastapi import FastAPI
from fastapi import Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from slmkit.runtime.auth import ApiKeys
from slmkit.runtime.pipeline import Pipeline, Response
from slmkit.runtime.request import MAX_TOP_LOGPROBS, ChatOptions, Request
from slmkit.runtime.stops import MAX_STOPS

AUTO_MODEL = "auto"


@dataclass(frozen=True)
class Shadow:
    """Shadow mode: `tier` answers model "auto"; `recorder` (runtime/shadow/recorder.py ShadowRecorder,
    anything with `submit(request, response)`) records each answered request off the request path."""

    tier: str
    recorder: Any


class ServerLimits(BaseModel):
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    max_concurrency: int = Field(4, gt=0)        # requests answered at once; the rest wait
    queue_timeout_s: float = Field(30.0, gt=0)   # how long a request may wait for a slot before 503


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict] | None = None


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")   # strict, ...

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionSpec


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")   # description

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    schema_: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a `json_schema` object with `name` and `schema`")
        return self


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")   # OpenAI clients send temperature, top_p, user, ...

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    stop: str | list[str] | None = None
    n: int | None = Field(None, gt=0)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        """JSON may escape a lone surrogate (\\ud800) that no UTF-8 encoder, tokenizer or provider takes."""
        if (where := _lone_surrogate(data)) is not None:
            raise ValueError(f"{where or 'a string'} holds a lone surrogate code point (U+D800-U+DFFF), which is not "
                             "valid Unicode")
        return data


def _lone_surrogate(node: Any, path: str = "") -> str | None:
    """The path of the first string holding a code point U+D800-U+DFFF (surrogate pairs arrive joined), else None."""
    if isinstance(node, str):
        return path if any("\ud800" <= c <= "\udfff" for c in node) else None
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return path or "a key"
        if (found := _lone_surrogate(value, f"{path}.{key}" if path else str(key))) is not None:
            return found
    return None


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code, self.headers = status, message, kind, param, code, headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _text(message: ChatMessage) -> str:
    """String content, or the text parts of a content list (images and audio are refused)."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.get("type") != "text":
            raise ApiError(400, f"only text content is supported, got a {part.get('type')!r} part", param="messages")
        if not isinstance(part.get("text"), str):
            raise ApiError(400, "a content part of type 'text' needs a string 'text' field", param="messages")
        parts.append(part["text"])
    return "".join(parts)


# Parameters slmkit does not take: refused (400 naming the parameter) rather than silently ignored.
UNSUPPORTED = {
    "functions": "functions is OpenAI's deprecated form of tools: send `tools` instead",
    "function_call": "function_call is OpenAI's deprecated form of tool_choice: send `tool_choice` instead",
}


def _stops(value: str | list[str] | None) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else list(value or [])
    if len(stops) > MAX_STOPS or any(not s for s in stops):
        raise ApiError(400, f"stop takes up to {MAX_STOPS} non-empty strings, got {len(stops)}", param="stop")
    return tuple(stops)


def check_parameters(body: ChatCompletionRequest) -> None:
    """Refuse what would otherwise be accepted and ignored, and combinations OpenAI refuses."""
    if body.n not in (None, 1):
        raise ApiError(400, f"n={body.n} is not supported: every slmkit tier answers one choice per request "
                            "(local tiers decode greedily, so further choices would repeat it)", param="n")
    extra = body.model_extra or {}
    for name, why in UNSUPPORTED.items():
        if extra.get(name):
            raise ApiError(400, why, param=name)
    if body.top_logprobs is not None and not body.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
    names = [t.function.name for t in body.tools or []]
    if len(set(names)) != len(names):
        raise ApiError(400, "tools: function names must be unique", param="tools")
    if isinstance(body.tool_choice, dict):
        name = (body.tool_choice.get("function") or {}).get("name")
        if body.tool_choice.get("type") != "function" or name not in names:
            raise ApiError(400, f"tool_choice names function {name!r}, which is not in tools ({', '.join(names) or 'none'})",
                           param="tool_choice")
    elif body.tool_choice == "required" and not names:
        raise ApiError(400, "tool_choice 'required' needs tools", param="tool_choice")


def options(body: ChatCompletionRequest) -> ChatOptions:
    """What the request asks of the answer, as the tiers' backends take it (runtime/request.py)."""
    response_format = body.response_format.model_dump(by_alias=True, exclude_none=True) if body.response_format else None
    return ChatOptions(tools=tuple(t.model_dump(exclude_none=True) for t in body.tools or []),
                       tool_choice=body.tool_choice, response_format=response_format,
                       top_logprobs=(body.top_logprobs or 0) if body.logprobs else None, stop=_stops(body.stop))


def _message(m: ChatMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role, "content": _text(m)}
    extra = m.model_extra or {}
    if m.role == "assistant" and extra.get("tool_calls"):
        calls = extra["tool_calls"]
        if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("function"), dict)
                                                  and isinstance(c["function"].get("name"), str) for c in calls):
            raise ApiError(400, "an assistant message's tool_calls must be a list of {id, type, function: {name, arguments}}",
                           param="messages")
        message["tool_calls"] = calls
    if m.role == "tool":
        if not isinstance(extra.get("tool_call_id"), str):
            raise ApiError(400, "a message with role 'tool' needs the `tool_call_id` it answers", param="messages")
        message["tool_call_id"] = extra["tool_call_id"]
    return message


def to_request(body: ChatCompletionRequest) -> Request:
    """The pipeline's Request from an OpenAI body (messages, max_completion_tokens or max_tokens,
    answer-shaping options). Raises ApiError 400 for an unknown role or a conversation Request refuses.
    """
    messages = [_message(m) for m in body.messages]
    unknown = sorted({m["role"] for m in messages} - {"system", "user", "assistant", "tool"})
    if unknown:
        raise ApiError(400, f"unsupported message role(s): {', '.join(unknown)}", param="messages")
    try:
        return Request.from_messages(messages, max_tokens=body.max_completion_tokens or body.max_tokens,
                                     id=f"chatcmpl-{uuid.uuid4().hex[:24]}", options=options(body))
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages") from None


def check_tiers(pipeline: Pipeline, request: Request, force: str | None) -> None:
    """A request needing tools or response_format goes only to tiers that honour them: refuse it
    (400 naming the tiers) when none can, or when the tier the client named cannot."""
    needed = request.required_features()
    if not needed:
        return
    able = pipeline.capable_tiers(request)
    what = " and ".join(needed)
    param = needed[0]
    described = ", ".join(f"{t.name} ({t.backend})" for t in pipeline.spec.tiers)
    if not able:
        raise ApiError(400, f"no tier of this spec can honour {what}: {described}", param=param)
    if force is not None and force not in able:
        tier = pipeline.spec.tier(force)
        raise ApiError(400, f"tier {force!r} ({tier.backend}) cannot honour {what}; use model 'auto' or a tier that "
                            f"can: {', '.join(able)}", param=param)


def _choice_message(response: Response) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text if response.text or not response.tool_calls
                               else None}
    if response.tool_calls:
        message["tool_calls"] = response.tool_calls
    return message


def _slmkit(pipeline: Pipeline, request: Request, response: Response) -> dict[str, Any]:
    """The response's `slmkit` field: tier, trace, and notes on what the answering tier could not give."""
    notes = []
    if request.options.top_logprobs is not None and response.tier and response.logprobs is None:
        tier = pipeline.spec.tier(response.tier)
        notes.append(f"logprobs: tier {tier.name!r} ({tier.backend}) has none")
    return {"tier": response.tier, "trace": response.trace.to_dict(), **({"notes": notes} if notes else {})}


def header_trace(trace: dict) -> str:
    """The trace without any request or answer text, ASCII-only JSON (fits an HTTP header)."""
    compact = {
        "router": {k: trace["router"].get(k) for k in ("method", "label", "confidence", "probabilities", "latency_ms")},
        "policy": trace["policy"],
        "steps": [{k: s[k] for k in ("tier", "purpose", "ok", "latency_ms", "input_tokens", "output_tokens", "cost_usd",
                                      "simulated", "error")} for s in trace["steps"]],
        "confidence": [{k: c[k] for k in ("tier", "method", "value", "threshold", "escalate")} for c in trace["confidence"]],
        "escalations": trace["escalations"], "fallbacks": trace["fallbacks"],
        "final_tier": trace["final_tier"], "latency_ms": round(trace["latency_ms"], 1), "cost_usd": trace["cost_usd"],
    }
    return json.dumps(compact, ensure_ascii=True, separators=(",", ":"))


def _usage(response: Response) -> dict:
    answers = [s for s in response.trace.steps if s.ok and s.purpose == "answer" and s.tier == response.tier]
    last = answers[-1] if answers else None
    prompt, completion = (last.input_tokens, last.output_tokens) if last else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def create_app(pipeline: Pipeline, limits: ServerLimits | None = None, shadow: Shadow | None = None,
               keys: ApiKeys | None = None) -> FastAPI:
    """The OpenAI-compatible app over `pipeline`: POST /v1/chat/completions (JSON or SSE stream) and
    GET /v1/models. Every error is answered in OpenAI's error shape (`_install_errors`); at most
    `limits.max_concurrency` requests run at once, a request waiting longer than
    `limits.queue_timeout_s` for a slot gets 503 with Retry-After. With `shadow`, model "auto" is
    answered by `shadow.tier` (the app's tier today) and every answered request is handed to
    `shadow.recorder` after its answer (runtime/shadow/recorder.py). With `keys`, every endpoint
    needs `Authorization: Bearer KEY` (401 otherwise) and a key over its request or spend limit gets
    429 with Retry-After (runtime/auth.py)."""
    limits = limits or ServerLimits()
    app = FastAPI(title="slmkit", description="OpenAI-compatible chat completions, routed on-device or to the cloud.")
    _install_errors(app, limits)
    if keys is not None:
        _install_auth(app, keys)
    slots = asyncio.Semaphore(limits.max_concurrency)
    tiers = [t.name for t in pipeline.spec.tiers]
    created = int(time.time())

    def answered(key: int | None) -> Callable[[Request, Response], None]:
        """What happens after each answer: its cost charged to the key, the shadow record."""
        def after(request: Request, response: Response) -> None:
            if keys is not None and key is not None:
                keys.charge(key, response.trace.cost_usd)
            if shadow is not None:
                shadow.recorder.submit(request, response)
        return after

    @app.get("/v1/models")
    async def models() -> dict:
        names = [AUTO_MODEL, *tiers]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": created, "owned_by": "slmkit"}
                                           for n in names]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, http: HttpRequest):
        if len(await http.body()) > limits.max_body_bytes:  # bodies sent without a content-length
            raise ApiError(413, f"request body exceeds the limit of {limits.max_body_bytes} bytes", code="request_too_large")
        if body.model != AUTO_MODEL and body.model not in tiers:
            raise ApiError(404, f"model {body.model!r} does not exist; use 'auto' or a tier: {', '.join(tiers)}",
                           param="model", code="model_not_found")
        force = None if body.model == AUTO_MODEL else body.model
        if shadow is not None and force is None:
            force = shadow.tier
        check_parameters(body)
        request = to_request(body)
        check_tiers(pipeline, request, force)
        key = getattr(http.state, "api_key", None)
        if keys is not None and key is not None and (wait := keys.admit(key)) is not None:
            raise ApiError(429, f"this API key is over its limit ({_limit_text(keys)}); retry in {wait:.0f} s",
                           kind="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": f"{wait:.0f}"})
        recorded = answered(key)
        try:
            await asyncio.wait_for(slots.acquire(), timeout=limits.queue_timeout_s)
        except TimeoutError:
            raise ApiError(503, f"all {limits.max_concurrency} slots busy for {limits.queue_timeout_s:g} s; retry later",
                           kind="server_error", code="overloaded", headers={"Retry-After": "5"}) from None
        if body.stream:
            return StreamingResponse(_sse(pipeline, request, force, slots, http, recorded), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            response = await pipeline.ahandle(request, force)
        finally:
            slots.release()
        recorded(request, response)
        return _completion(pipeline, request, response)

    return app


def _limit_text(keys: ApiKeys) -> str:
    parts = []
    if keys.limits.requests_per_minute is not None:
        parts.append(f"{keys.limits.requests_per_minute} requests per minute")
    if keys.limits.usd_per_day is not None:
        parts.append(f"${keys.limits.usd_per_day:.6f}".rstrip("0").rstrip(".") + " per 24 hours")
    return " and ".join(parts)


def _install_auth(app: FastAPI, keys: ApiKeys) -> None:
    """Every request needs one of `keys` as a Bearer token: 401 in OpenAI's shape otherwise. The key
    found is kept in `request.state.api_key` (its index, never its text)."""

    @app.middleware("http")
    async def _authenticate(request: HttpRequest, call_next):
        header = request.headers.get("authorization")
        key = keys.authenticate(header)
        if key is None:
            message = ("no API key provided: send it as 'Authorization: Bearer KEY'" if not header else
                       "the Authorization header must be 'Bearer KEY'" if not header.lower().startswith("bearer ") else
                       "incorrect API key provided")
            return ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}).response()
        request.state.api_key = key
        return await call_next(request)


def _install_errors(app: FastAPI, limits: ServerLimits) -> None:
    """OpenAI's error shape for slmkit's own errors, invalid bodies, 404/405, and bodies over
    `limits.max_body_bytes` (refused from Content-Length before they are read)."""

    @app.exception_handler(ApiError)
    async def _api_error(_: HttpRequest, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: HttpRequest, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":  # loc holds the character position, not a parameter
            position = first["loc"][-1] if first.get("loc") else "?"
            return ApiError(400, f"the request body is not valid JSON (at character {position}): "
                                 f"{first.get('ctx', {}).get('error', first['msg'])}").response()
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return ApiError(400, f"{where or 'body'}: {first['msg']}", param=where or None).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: HttpRequest, exc: StarletteHTTPException) -> JSONResponse:
        """404, 405 and body-parsing errors in OpenAI's error shape, not FastAPI's {"detail": ...}."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        message = {404: "no such endpoint; slmkit serves /v1/chat/completions and /v1/models",
                   405: "method not allowed on this endpoint"}.get(exc.status_code, str(exc.detail))
        return ApiError(exc.status_code, message, code=code, headers=getattr(exc, "headers", None)).response()

    @app.middleware("http")
    async def _limit_body(request: HttpRequest, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return ApiError(413, f"request body of {declared} bytes exceeds the limit of {limits.max_body_bytes}",
                            code="request_too_large").response()
        return await call_next(request)


def _completion(pipeline: Pipeline, request: Request, response: Response) -> JSONResponse:
    """A finished answer as OpenAI's chat.completion (503 all_tiers_failed when no tier answered),
    with the route in `slmkit` and the x-slmkit-tier / x-slmkit-trace headers."""
    extra = _slmkit(pipeline, request, response)
    headers = {"x-slmkit-tier": str(response.tier), "x-slmkit-trace": header_trace(extra["trace"])}
    if not response.ok:
        error = {"message": response.error, "type": "server_error", "param": None, "code": "all_tiers_failed"}
        return JSONResponse({"error": error, "slmkit": extra}, status_code=503, headers=headers)
    logprobs = {"content": response.logprobs, "refusal": None} if response.logprobs is not None else None
    return JSONResponse({
        "id": request.id, "object": "chat.completion", "created": int(time.time()), "model": response.tier,
        "choices": [{"index": 0, "message": _choice_message(response), "finish_reason": response.finish_reason,
                     "logprobs": logprobs}],
        "usage": _usage(response),
        "slmkit": extra,
    }, headers=headers)


def _chunk(request: Request, model: str, delta: dict, finish: str | None = None, extra: dict | None = None,
           logprobs: list[dict] | None = None) -> str:
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs, "refusal": None}
    body = {"id": request.id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [choice]}
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body)}\n\n"


def _events(pipeline: Pipeline, request: Request, force: str | None,
            on_response: Callable[[Request, Response], None] = lambda request, response: None) -> Iterator[str]:
    """Server-sent events of one answer (blocking: local engines are C calls). The trace rides on the
    last chunk; `on_response` gets the finished Response (shadow recording)."""
    model = force or AUTO_MODEL
    yield _chunk(request, model, {"role": "assistant", "content": ""})
    try:
        for piece in pipeline.stream(request, force):
            if isinstance(piece, Response):
                on_response(request, piece)
                extra = {"slmkit": _slmkit(pipeline, request, piece), "usage": _usage(piece)}
                if piece.tool_calls:
                    calls = [{"index": i, **call} for i, call in enumerate(piece.tool_calls)]
                    yield _chunk(request, piece.tier or model, {"tool_calls": calls})
                if piece.logprobs is not None:
                    yield _chunk(request, piece.tier or model, {}, logprobs=piece.logprobs)
                if piece.ok:
                    yield _chunk(request, piece.tier or model, {}, piece.finish_reason, extra)
                else:
                    error = {"message": piece.error, "type": "server_error", "param": None, "code": "all_tiers_failed"}
                    yield f"data: {json.dumps({'error': error, **extra})}\n\n"
            elif piece:
                yield _chunk(request, model, {"content": piece})
    except Exception as exc:  # noqa: BLE001 - a stream always ends with an error event and [DONE]
        error = {"message": f"the stream failed: {type(exc).__name__}: {exc}", "type": "server_error", "param": None,
                 "code": "stream_failed"}
        yield f"data: {json.dumps({'error': error})}\n\n"
    yield "data: [DONE]\n\n"


def _close(events: Iterator[str], timeout_s: float = 600.0) -> None:
    """Close the event generator, so the engine it streams from releases its lock and stops decoding
    (GeneratorExit reaches `with lock:` in the backend). If a worker thread is inside it right now,
    wait for that step to return first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            events.close()
            return
        except ValueError:  # "generator already executing" in the thread that reads the next event
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


async def _sse(pipeline: Pipeline, request: Request, force: str | None, slots: asyncio.Semaphore,
               http: HttpRequest, on_response: Callable[[Request, Response], None]) -> AsyncIterator[str]:
    """The events off the event loop. However the stream ends (done, or the client gone: checked
    before each event, since writes to a closed connection do not fail), the generator is closed,
    releasing the engine, and the slot is freed."""
    events = _events(pipeline, request, force, on_response)
    try:
        async for event in iterate_in_threadpool(events):
            if await http.is_disconnected():
                break
            yield event
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_close, events)
        slots.release()
