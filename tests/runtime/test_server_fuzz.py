"""Fuzzing the HTTP API (hypothesis): whatever the body — any JSON, any code points, huge or empty
fields, streaming or not — the answer is 200 or an OpenAI-shaped error, never a bare 500, and the
server keeps answering."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmkit.runtime.backends.base import Generation
from slmkit.runtime.server import ServerLimits, create_app
from tests.runtime.test_server import make_pipeline


class Echo:
    """An engine that answers with the last message's text (so odd inputs reach the response)."""

    name = "echo"

    def generate(self, messages, max_tokens, logprobs=False, options=None) -> Generation:
        text = str(messages[-1].get("content", ""))[: max_tokens * 4]
        return Generation(text=text, input_tokens=len(messages), output_tokens=len(text) // 4 + 1, latency_ms=1.0,
                          model="echo")

    def stream(self, messages, max_tokens, options=None):
        generation = self.generate(messages, max_tokens)
        for i in range(0, len(generation.text), 7):
            yield generation.text[i:i + 7]
        yield generation

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def client() -> TestClient:
    pipeline = make_pipeline("simple", 0.99, on_device=Echo(), mid=Echo(), frontier=Echo())
    pipeline.spec.confidence_check.tiers = []
    return TestClient(create_app(pipeline, ServerLimits(max_body_bytes=64 * 1024)), raise_server_exceptions=False)


# every code point, lone surrogates included (JSON can escape them; UTF-8 cannot carry them)
text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "a\udfffb", "\U0001f600", "é" * 5000])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)
roles = st.sampled_from(["user", "user", "user", "system", "assistant", "developer", "tool", "function", ""]) | text
content = text | st.none() | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | text},
                                                            optional={"text": text | st.integers()}), max_size=3)
message = st.fixed_dictionaries({"role": roles}, optional={"content": content, "tool_calls": json_values,
                                                           "tool_call_id": text | st.integers()})
numbers = st.integers(min_value=-2, max_value=2**70) | st.floats(allow_nan=False) | st.none() | text
# wild: every field anything
wild_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "on-device", "mid", "frontier"]) | text,
     "messages": st.lists(message, min_size=1, max_size=5) | json_values},
    optional={"stream": st.booleans() | json_values, "max_tokens": numbers, "max_completion_tokens": numbers,
              "stop": text | st.lists(text, max_size=6) | json_values, "n": numbers,
              "tools": json_values, "tool_choice": json_values, "response_format": json_values,
              "logprobs": json_values, "top_logprobs": numbers, "temperature": json_values})
# plausible: what clients send, with any text in it (most of these must be answered)
tool = st.fixed_dictionaries({"type": st.just("function"),
                              "function": st.fixed_dictionaries({"name": st.from_regex(r"[a-z_]{1,10}", fullmatch=True)},
                                                                optional={"description": text,
                                                                          "parameters": st.just({"type": "object"})})})
conversation = st.builds(lambda head, user: head + [{"role": "user", "content": user}],
                         st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "developer"]),
                                                         "content": text}), max_size=3), text)
plausible_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "on-device", "mid", "frontier"]), "messages": conversation},
    optional={"stream": st.booleans(), "max_tokens": st.integers(1, 4096), "stop": text | st.lists(text, max_size=4),
              "tools": st.lists(tool, max_size=2), "tool_choice": st.sampled_from(["none", "auto"]),
              "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
              "logprobs": st.booleans(), "temperature": st.floats(0, 2), "user": text})
chat_body = wild_body | plausible_body


def _check(reply) -> None:
    assert reply.status_code != 500 or "error" in reply.json(), reply.text[:300]
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[6:] for line in reply.text.split("\n") if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", reply.text[-300:]
        for event in events[:-1]:
            assert isinstance(json.loads(event), dict)
        return
    body = reply.json()
    if reply.status_code == 200:
        assert body["object"] in ("chat.completion", "list")
        return
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str) and error["message"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=chat_body)
def test_structured_bodies_get_answers_or_openai_errors(client: TestClient, body: dict) -> None:
    try:
        raw = json.dumps(body).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return
    _check(client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values | st.binary(max_size=200))
def test_any_body_gets_an_openai_error_not_a_crash(client: TestClient, body) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8", "surrogatepass")
    _check(client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"}))


def test_the_server_still_answers_after_the_fuzzing(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "hi"
