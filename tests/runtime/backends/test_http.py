"""Cloud tiers over HTTP: success, every failure mode as a BackendError, and no key in any reason."""

from __future__ import annotations

import httpx
import pytest
import respx

from slmkit.runtime.backends.base import BackendError
from slmkit.runtime.backends.http import AnthropicBackend, OpenAIBackend
from slmkit.runtime.spec import TierSpec

SECRET = "sk-test-SECRET-0123456789"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def openai_tier(**kw) -> TierSpec:
    return TierSpec(name="mid", backend="openai", model="gpt-test", base_url="https://llm.example.com/v1",
                    api_key_env="SLMKIT_TEST_KEY", timeout_s=2, **kw)


def anthropic_tier() -> TierSpec:
    return TierSpec(name="frontier", backend="anthropic", model="claude-test", api_key_env="SLMKIT_TEST_KEY", timeout_s=2)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLMKIT_TEST_KEY", SECRET)


@respx.mock
def test_openai_compatible_success() -> None:
    route = respx.post("https://llm.example.com/v1/chat/completions").respond(json={
        "model": "gpt-test-2025", "choices": [{"message": {"content": "Hello!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}})
    generation = OpenAIBackend(openai_tier()).generate(MESSAGES, 64)
    assert (generation.text, generation.input_tokens, generation.output_tokens, generation.model) == ("Hello!", 12, 3, "gpt-test-2025")
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    body = httpx.Request("POST", "http://x", content=request.content).read()
    assert b'"max_tokens":64' in body.replace(b" ", b"") and b'"Be brief."' in body


@respx.mock
def test_anthropic_messages_success_sends_system_at_top_level() -> None:
    route = respx.post("https://api.anthropic.com/v1/messages").respond(json={
        "model": "claude-test", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 2}})
    generation = AnthropicBackend(anthropic_tier()).generate(MESSAGES, 32)
    assert (generation.text, generation.input_tokens, generation.output_tokens) == ("Hi there", 9, 2)
    request = route.calls.last.request
    assert request.headers["x-api-key"] == SECRET and request.headers["anthropic-version"]
    import json

    body = json.loads(request.content)
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("backend, url", [(lambda: OpenAIBackend(openai_tier()), "https://llm.example.com/v1/chat/completions"),
                                          (lambda: AnthropicBackend(anthropic_tier()), "https://api.anthropic.com/v1/messages")])
@pytest.mark.parametrize("response, reason", [
    (httpx.Response(500, json={"error": "boom"}), "HTTP 500"),
    (httpx.Response(529, text="overloaded"), "HTTP 529"),
    (httpx.Response(401, json={"error": {"message": f"bad key {SECRET}"}}), "HTTP 401"),
    (httpx.Response(200, text="<html>gateway</html>"), "malformed response: not JSON"),
    (httpx.Response(200, json=["a"]), "malformed response: not a JSON object"),
    (httpx.Response(200, json={"unexpected": True}), "malformed response"),
    (httpx.TimeoutException("read timed out"), "timeout after 2 s"),
    (httpx.ConnectError("refused"), "cannot reach "),
])
@respx.mock
def test_failures_become_backend_errors_without_secrets(backend, url: str, response, reason: str) -> None:
    route = respx.post(url)
    if isinstance(response, Exception):
        route.side_effect = response
    else:
        route.return_value = response
    with pytest.raises(BackendError) as error:
        backend().generate(MESSAGES, 16)
    assert error.value.reason.startswith(reason) and SECRET not in error.value.reason


def test_missing_key_names_the_variable_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLMKIT_TEST_KEY")
    with pytest.raises(BackendError, match="SLMKIT_TEST_KEY .* is not set"):
        OpenAIBackend(openai_tier()).generate(MESSAGES, 16)


@respx.mock
def test_pipeline_trace_never_contains_the_key(tmp_path) -> None:
    """End to end: a 401 whose body echoes the key falls through; the serialized trace has no key."""
    import json

    from slmkit.runtime.default import default_spec_path
    from slmkit.runtime.pipeline import Pipeline
    from slmkit.runtime.request import Request
    from slmkit.runtime.spec import parse_spec

    respx.post("https://llm.example.com/v1/chat/completions").respond(401, json={"error": f"invalid key {SECRET}"})
    data = json.loads(default_spec_path().read_text(encoding="utf-8"))
    data["tiers"][1] = openai_tier().model_dump(mode="json")
    data["router"]["weights"] = str(default_spec_path().parent / "router-head.json")
    spec = parse_spec(data)
    pipeline = Pipeline(spec, default_spec_path().parent)
    response = pipeline.handle(Request("What is the capital of Mongolia, and when did it get that name?"))
    dumped = json.dumps(response.trace.to_dict())
    assert SECRET not in dumped
    assert response.trace.policy["tier"] == "mid"
    assert response.trace.fallbacks[0]["reason"].startswith("HTTP 401") and response.tier == "frontier"
