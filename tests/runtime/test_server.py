"""The routed OpenAI-compatible server, driven by the official `openai` client over loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import uvicorn

from slmkit.runtime.auth import ApiKeys, KeyLimits
from slmkit.runtime.backends.base import BackendError, Generation
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.pipeline import Pipeline
from slmkit.runtime.server import ServerLimits, create_app
from slmkit.runtime.spec import ConfidenceCheckSpec, parse_spec
from tests.runtime.fakes import FixedRouter, Scripted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, pipeline: Pipeline, limits: ServerLimits | None = None, keys: ApiKeys | None = None) -> None:
        self.port = _free_port()
        config = uvicorn.Config(create_app(pipeline, limits, keys=keys), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key: str = "unused") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0)


def make_pipeline(label: str = "simple", confidence: float = 0.95, **backends) -> Pipeline:
    """The default spec with the seed's sampled self-rating (Scripted replies carry the ratings)."""
    spec = parse_spec(json.loads(default_spec_path().read_text(encoding="utf-8")))
    spec.confidence_check = ConfidenceCheckSpec(tiers=["on-device"], method="sampled_rating", threshold=7)
    names = {"on_device": "on-device", "mid": "mid", "frontier": "frontier"}
    return Pipeline(spec, default_spec_path().parent, {names[k]: v for k, v in backends.items()},
                    router=FixedRouter(label, confidence))


@pytest.fixture
def served() -> Iterator[Server]:
    pipeline = make_pipeline(on_device=Scripted("Paris is the capital.", "9", "ok", "9"),
                             mid=Scripted("Mid answer.", "Mid again."), frontier=Scripted("Frontier answer."))
    with Server(pipeline) as server:
        yield server


def test_models_lists_auto_and_every_tier(served: Server) -> None:
    assert [m.id for m in served.client().models.list()] == ["auto", "on-device", "mid", "frontier"]


def test_auto_routes_and_returns_the_trace_in_header_and_body(served: Server) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris is the capital."
    assert completion.model == "on-device" and completion.usage.completion_tokens == 50
    assert raw.headers["x-slmkit-tier"] == "on-device"
    header = json.loads(raw.headers["x-slmkit-trace"])
    assert header["final_tier"] == "on-device" and header["policy"]["tier"] == "on-device"
    assert "Capital of France" not in raw.headers["x-slmkit-trace"]   # no request text in headers
    extra = completion.model_extra["slmkit"]
    assert extra["trace"]["router_input"]["user"] == "Capital of France?" and extra["trace"]["confidence"][0]["value"] == 9


def test_a_tier_name_forces_that_tier(served: Server) -> None:
    completion = served.client().chat.completions.create(model="frontier", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Frontier answer."
    assert completion.model_extra["slmkit"]["trace"]["policy"]["reason"] == "tier named by the request"


def test_streaming_sends_deltas_then_the_trace(served: Server) -> None:
    chunks = list(served.client().chat.completions.create(model="mid", messages=[{"role": "user", "content": "hi"}],
                                                          stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip() == "Mid answer." and len(chunks) >= 3
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["slmkit"]["trace"]["final_tier"] == "mid"


def test_unknown_model_and_bad_bodies_get_openai_style_errors(served: Server) -> None:
    client = served.client()
    with pytest.raises(openai.NotFoundError, match="does not exist; use 'auto' or a tier"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="last message must have role 'user'"):
        client.chat.completions.create(model="auto", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="only text content"):
        client.chat.completions.create(model="auto", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}])
    reply = httpx.post(f"{served.base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request_error"
    reply = httpx.post(f"{served.base_url}/chat/completions", json={"model": "auto", "messages": []})
    assert reply.status_code == 400 and "messages" in reply.json()["error"]["message"]


def test_oversized_body_is_refused() -> None:
    with Server(make_pipeline(mid=Scripted("x")), ServerLimits(max_body_bytes=2000)) as server:
        with pytest.raises(openai.APIStatusError) as info:
            server.client().chat.completions.create(model="auto", messages=[{"role": "user", "content": "x" * 5000}])
        assert info.value.status_code == 413 and "exceeds the limit of 2000" in str(info.value)


def test_every_tier_failing_is_a_503_with_every_reason() -> None:
    down = BackendError("HTTP 500")
    pipeline = make_pipeline("complex", 0.99, on_device=Scripted(down), mid=Scripted(down), frontier=Scripted(down))
    with Server(pipeline) as server:
        reply = httpx.post(f"{server.base_url}/chat/completions",
                           json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 503
    assert "every tier failed" in reply.json()["error"]["message"] and reply.json()["slmkit"]["tier"] is None


def test_concurrency_limit_queues_then_answers_every_request() -> None:
    """Four clients, one slot: all are answered (queued, never dropped)."""
    pipeline = make_pipeline("medium", 0.99, mid=Scripted(*[f"answer {i}" for i in range(4)]))
    with Server(pipeline, ServerLimits(max_concurrency=1)) as server:
        results: list[str] = []

        def ask() -> None:
            reply = server.client().chat.completions.create(model="auto", messages=[{"role": "user", "content": "q"}])
            results.append(reply.choices[0].message.content)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(results) == [f"answer {i}" for i in range(4)]


def _length_cut(text: str) -> Generation:
    return Generation(text=text, input_tokens=10, output_tokens=5, latency_ms=1.0, model="scripted", finish_reason="length")


def test_finish_reason_says_length_when_max_tokens_cut_the_answer() -> None:
    pipeline = make_pipeline(mid=Scripted(_length_cut("One two three"), _length_cut("One two three")))
    with Server(pipeline) as server:
        client = server.client()
        whole = client.chat.completions.create(model="mid", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        chunks = list(client.chat.completions.create(model="mid", max_tokens=5, stream=True,
                                                     messages=[{"role": "user", "content": "hi"}]))
    assert whole.choices[0].finish_reason == "length" and chunks[-1].choices[0].finish_reason == "length"


def test_stop_sequences_cut_the_answer_streamed_or_not() -> None:
    answer = "1. Bananas\n2. Apples\n3. Pears"
    pipeline = make_pipeline(mid=Scripted(_length_cut(answer), _length_cut(answer), _length_cut(answer)))
    with Server(pipeline) as server:
        client = server.client()
        messages = [{"role": "user", "content": "List fruit."}]
        whole = client.chat.completions.create(model="mid", stop=["\n", "Banana"], messages=messages)
        chunks = list(client.chat.completions.create(model="mid", stop="Apples", stream=True, messages=messages))
        with pytest.raises(openai.BadRequestError, match="up to 4 non-empty strings"):
            client.chat.completions.create(model="mid", stop=["a", "b", "c", "d", "e"], messages=messages)
    assert whole.choices[0].message.content == "1. " and whole.choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "1. Bananas\n2. "
    assert chunks[-1].choices[0].finish_reason == "stop"


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize("model, extra, param, message", [
    ("auto", {"n": 2}, "n", "one choice per request"),
    ("auto", {"functions": [{"name": "f"}]}, "functions", "send `tools` instead"),
    ("auto", {"logprobs": False, "top_logprobs": 2}, "top_logprobs", "needs logprobs: true"),
    ("auto", {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice", "not in tools"),
    ("auto", {"response_format": {"type": "json_schema"}}, "response_format", "needs a `json_schema`"),
    # the default spec's cloud tiers are simulated: none calls tools; only the llama.cpp tier constrains JSON
    ("auto", {"tools": [TOOL]}, "tools", "no tier of this spec can honour tools: on-device (llama.cpp), mid (simulated)"),
    ("mid", {"response_format": {"type": "json_object"}}, "response_format",
     "tier 'mid' (simulated) cannot honour response_format; use model 'auto' or a tier that can: on-device"),
])
def test_parameters_no_tier_would_honour_are_refused_not_ignored(served: Server, model: str, extra: dict, param: str,
                                                                  message: str) -> None:
    reply = httpx.post(f"{served.base_url}/chat/completions",
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == param
    assert message in reply.json()["error"]["message"]
    ok = httpx.post(f"{served.base_url}/chat/completions", json={
        "model": "frontier", "messages": [{"role": "user", "content": "hi"}], "n": 1, "tool_choice": "none",
        "response_format": {"type": "text"}, "logprobs": False})
    assert ok.status_code == 200


def test_every_error_has_the_openai_shape(served: Server) -> None:
    def error(reply: httpx.Response, status: int) -> dict:
        assert reply.status_code == status and set(reply.json()) == {"error"}, reply.text
        assert {"message", "type", "param", "code"} <= set(reply.json()["error"])
        return reply.json()["error"]

    assert error(httpx.get(f"{served.base_url}/nothing-here"), 404)["code"] == "not_found"
    assert error(httpx.get(f"{served.base_url}/chat/completions"), 405)["code"] == "method_not_allowed"
    bad_json = error(httpx.post(f"{served.base_url}/chat/completions", content=b'{"model": "auto", "messages": [}',
                                headers={"content-type": "application/json"}), 400)
    assert bad_json["param"] is None and "not valid JSON (at character" in bad_json["message"]
    error(httpx.post(f"{served.base_url}/chat/completions", content=b'{"model": "auto\xff\xfe"}',
                     headers={"content-type": "application/json"}), 400)
    text_part = error(httpx.post(f"{served.base_url}/chat/completions", json={
        "model": "auto", "messages": [{"role": "user", "content": [{"type": "text"}]}]}), 400)
    assert "needs a string 'text'" in text_part["message"]


def test_a_failing_stream_ends_with_an_error_event_then_done() -> None:
    down = BackendError("HTTP 500")
    pipeline = make_pipeline("complex", 0.99, on_device=Scripted(down), mid=Scripted(down), frontier=Scripted(down))
    with Server(pipeline) as server:
        with httpx.stream("POST", f"{server.base_url}/chat/completions", json={
                "model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as reply:
            events = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    last = json.loads(events[-2].removeprefix("data: "))
    assert "every tier failed" in last["error"]["message"]
    finishes = [c["finish_reason"] for e in events[:-1] for c in json.loads(e[6:]).get("choices", [])]
    assert set(finishes) <= {None, "stop", "length"}


class _LockedSlowEngine:
    """Streams one word every 50 ms while holding its lock, as the llama.cpp tier does."""

    name = "locked"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed_early = threading.Event()

    def generate(self, messages, max_tokens, logprobs=False, options=None) -> Generation:
        *_, last = self.stream(messages, max_tokens)
        return last

    def stream(self, messages, max_tokens, options=None):
        with self.lock:
            try:
                for i in range(100):
                    time.sleep(0.05)
                    yield f"word{i} "
            except GeneratorExit:
                self.closed_early.set()
                raise
            yield Generation(text="done", input_tokens=1, output_tokens=100, latency_ms=1.0, model="locked")

    def close(self) -> None:
        pass


def test_a_client_leaving_mid_stream_releases_the_engine() -> None:
    engine = _LockedSlowEngine()
    pipeline = make_pipeline("medium", 0.99, mid=engine)
    with Server(pipeline) as server:
        body = {"model": "mid", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as reply:
            next(reply.iter_lines())  # one event, then the client goes away
        assert engine.closed_early.wait(10), "the generator was never closed"
        assert engine.lock.acquire(timeout=10), "the engine's lock is still held"
        engine.lock.release()
        started = time.monotonic()
        quick = httpx.post(f"{server.base_url}/chat/completions", timeout=30, json={**body, "stream": False,
                                                                                   "max_tokens": 3})
        assert quick.status_code == 200 and time.monotonic() - started < 15


def test_a_named_tier_answers_itself_without_confidence_escalation() -> None:
    """`model: "on-device"` gets the on-device answer even when its confidence check would escalate;
    only a failing tier falls through."""
    pipeline = make_pipeline(on_device=Scripted("Low-rated answer.", "2"), mid=Scripted("Mid answer."))
    with Server(pipeline) as server:
        reply = server.client().chat.completions.create(model="on-device", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Low-rated answer." and reply.model == "on-device"
        assert reply.model_extra["slmkit"]["trace"]["escalations"] == []
        chunks = list(server.client().chat.completions.create(model="mid", stream=True,
                                                              messages=[{"role": "user", "content": "hi"}]))
        assert chunks[-1].model_extra["slmkit"]["trace"]["final_tier"] == "mid"


KEY = "sk-test-" + "k" * 24


def test_a_key_is_required_and_a_wrong_one_gets_openais_401() -> None:
    pipeline = make_pipeline(on_device=Scripted("Paris.", "9"), mid=Scripted(), frontier=Scripted())
    with Server(pipeline, keys=ApiKeys([KEY])) as server:
        for wrong in ("unused", KEY + "x", KEY[:-1]):
            with pytest.raises(openai.AuthenticationError) as caught:
                server.client(wrong).models.list()
            error = caught.value.response.json()["error"]
            assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
            assert wrong not in caught.value.response.text
        bare = httpx.post(f"{server.base_url}/chat/completions", json={"model": "auto", "messages": []})
        assert bare.status_code == 401 and "no API key provided" in bare.json()["error"]["message"]
        assert bare.headers["www-authenticate"] == "Bearer"
        unprefixed = httpx.get(f"{server.base_url}/models", headers={"Authorization": KEY})
        assert unprefixed.status_code == 401 and "must be 'Bearer KEY'" in unprefixed.json()["error"]["message"]
        assert KEY not in unprefixed.text
        assert httpx.get(f"http://127.0.0.1:{server.port}/nowhere").status_code == 401   # nothing is mapped unauthenticated
        reply = server.client(KEY).chat.completions.create(model="auto", messages=[{"role": "user", "content": "Capital?"}])
        assert reply.choices[0].message.content == "Paris."


def test_a_key_over_its_spend_limit_gets_429_with_retry_after() -> None:
    pipeline = make_pipeline(label="complex", on_device=Scripted(), mid=Scripted(),
                             frontier=Scripted(*["A long frontier answer."] * 5))
    other = "sk-other-" + "o" * 24
    keys = ApiKeys([KEY, other], KeyLimits(usd_per_day=0.0001))
    with Server(pipeline, keys=keys) as server:
        first = server.client(KEY).chat.completions.create(model="auto", messages=[{"role": "user", "content": "Prove it."}])
        assert first.choices[0].message.content and keys.spent(0) >= 0.0001   # Scripted: 100 in + 50 out tokens at $5/$25
        with pytest.raises(openai.RateLimitError) as caught:
            server.client(KEY).chat.completions.create(model="auto", messages=[{"role": "user", "content": "Again."}])
        assert caught.value.response.json()["error"]["code"] == "rate_limit_exceeded"
        assert 0 < int(caught.value.response.headers["retry-after"]) <= 24 * 3600
        stream = server.client(other).chat.completions.create(model="auto", stream=True,
                                                              messages=[{"role": "user", "content": "Prove it."}])
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert keys.spent(1) > 0   # a streamed answer is charged when it ends
