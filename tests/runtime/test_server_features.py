"""What a request asks beyond text, through `slmkit serve` with the official `openai` client: tools
and response_format reach cloud tiers (OpenAI-compatible and Anthropic, mocked at the HTTP level)
and route past tiers that cannot honour them; the llama.cpp tier enforces JSON schemas with a
grammar and returns logprobs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import jsonschema
import pytest

from slmkit.runtime.backends.http import AnthropicBackend, OpenAIBackend
from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.default import default_spec_path
from tests.runtime.fakes import Scripted
from tests.runtime.test_server import Server, make_pipeline

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
                                            "parameters": {"type": "object", "required": ["city"],
                                                           "properties": {"city": {"type": "string"}}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
INVOICE = {"type": "object", "additionalProperties": False, "required": ["vendor", "total"],
           "properties": {"vendor": {"type": "string", "maxLength": 40}, "total": {"type": "number"}}}


class Cloud:
    """OpenAI-compatible (mid) and Anthropic (frontier) providers at the HTTP level: records each
    request body and answers as the real APIs do."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict]] = {"openai": [], "anthropic": []}

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/chat/completions"):
            self.bodies["openai"].append(body)
            message: dict = {"role": "assistant", "content": "It is sunny in Paris."}
            finish = "stop"
            if body.get("tools") and body["messages"][-1]["role"] != "tool":
                message, finish = {"role": "assistant", "content": None, "tool_calls": [CALL]}, "tool_calls"
            elif body.get("response_format"):
                message["content"] = json.dumps({"vendor": "ACME", "total": 129.5})
            choice = {"index": 0, "message": message, "finish_reason": finish}
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [{"token": "It", "logprob": -0.01, "bytes": [73, 116], "top_logprobs": []}]}
            return httpx.Response(200, json={"id": "x", "model": body["model"], "choices": [choice],
                                             "usage": {"prompt_tokens": 20, "completion_tokens": 7}})
        self.bodies["anthropic"].append(body)
        if body.get("tool_choice", {}).get("name") == "json_answer":
            content = [{"type": "tool_use", "id": "toolu_9", "name": "json_answer", "input": {"vendor": "ACME", "total": 129.5}}]
            stop = "tool_use"
        elif body.get("tools") and body["messages"][-1]["role"] == "user" and isinstance(body["messages"][-1]["content"], str):
            content = [{"type": "text", "text": "Let me check."},
                       {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": "Sunny, 21 °C."}], "end_turn"
        return httpx.Response(200, json={"model": body["model"], "content": content, "stop_reason": stop,
                                         "usage": {"input_tokens": 30, "output_tokens": 9}})


def cloud_pipeline(cloud: Cloud, on_device) -> object:
    pipeline = make_pipeline("simple", 0.99, on_device=on_device)
    pipeline.spec.confidence_check.tiers = []
    tiers = {t.name: t for t in pipeline.spec.tiers}
    mid = tiers["mid"].model_copy(update={"backend": "openai", "model": "gpt-mock", "base_url": "http://openai.mock/v1"})
    frontier = tiers["frontier"].model_copy(update={"backend": "anthropic", "model": "claude-mock",
                                                    "base_url": "http://anthropic.mock/v1"})
    pipeline.spec.tiers = [tiers["on-device"], mid, frontier]
    transport = httpx.MockTransport(cloud.handler)
    pipeline._backends["mid"] = OpenAIBackend(mid, httpx.Client(transport=transport))
    pipeline._backends["frontier"] = AnthropicBackend(frontier, httpx.Client(transport=transport))
    return pipeline


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


@pytest.fixture
def served(cloud: Cloud) -> Iterator[Server]:
    with Server(cloud_pipeline(cloud, Scripted(*["On-device answer."] * 10))) as server:
        yield server


def test_tools_route_past_the_on_device_tier_and_reach_the_openai_tier(served: Server, cloud: Cloud) -> None:
    client = served.client()
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    reply = client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER], tool_choice="auto")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
    sent = cloud.bodies["openai"][-1]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
    trace = reply.model_extra["slmkit"]["trace"]
    assert trace["policy"]["tier"] == "on-device" and trace["final_tier"] == "mid"
    assert trace["fallbacks"] == [{"from": "on-device", "to": "mid", "reason": "skipped: cannot honour tools (llama.cpp tier)"}]
    # the client runs the tool and sends the result back: it reaches the provider as sent
    follow = messages + [{"role": "assistant", "content": None, "tool_calls": [CALL]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}]
    final = client.chat.completions.create(model="auto", messages=follow, tools=[WEATHER])
    assert final.choices[0].message.content == "It is sunny in Paris." and final.choices[0].finish_reason == "stop"
    assert cloud.bodies["openai"][-1]["messages"][-2:] == [
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_1"}]


def test_tool_calls_stream_as_openai_deltas(served: Server) -> None:
    client = served.client()
    chunks = list(client.chat.completions.create(model="auto", stream=True, tools=[WEATHER],
                                                 messages=[{"role": "user", "content": "Weather in Paris?"}]))
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and calls[0][0].index == 0 and calls[0][0].function.name == "get_weather"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_anthropic_tier_gets_tools_in_its_own_shape_and_answers_as_openai(served: Server, cloud: Cloud) -> None:
    client = served.client()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
    reply = client.chat.completions.create(model="frontier", messages=messages, tools=[WEATHER], tool_choice="required")
    sent = cloud.bodies["anthropic"][-1]
    assert sent["system"] == "Be brief." and sent["tool_choice"] == {"type": "any"}
    assert sent["tools"] == [{"name": "get_weather", "description": "Current weather in a city.",
                              "input_schema": WEATHER["function"]["parameters"]}]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    assert choice.message.tool_calls[0].id == "toolu_1"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
    follow = messages + [{"role": "assistant", "content": "Let me check.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21 C"}]
    final = client.chat.completions.create(model="frontier", messages=follow, tools=[WEATHER])
    assert final.choices[0].message.content == "Sunny, 21 °C."
    assert cloud.bodies["anthropic"][-1]["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"}]}]


def test_response_format_reaches_cloud_tiers_and_anthropic_answers_through_a_forced_tool(served: Server,
                                                                                         cloud: Cloud) -> None:
    client = served.client()
    fmt = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE, "strict": True}}
    messages = [{"role": "user", "content": "ACME invoice, 129.50 EUR. Extract it."}]
    mid = client.chat.completions.create(model="mid", messages=messages, response_format=fmt)
    assert cloud.bodies["openai"][-1]["response_format"] == fmt
    jsonschema.validate(json.loads(mid.choices[0].message.content), INVOICE)
    frontier = client.chat.completions.create(model="frontier", messages=messages, response_format=fmt)
    sent = cloud.bodies["anthropic"][-1]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_answer"} and sent["tools"][0]["input_schema"] == INVOICE
    assert frontier.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(frontier.choices[0].message.content), INVOICE)


def test_logprobs_come_from_tiers_that_have_them_and_the_others_say_so(served: Server, cloud: Cloud) -> None:
    client = served.client()
    messages = [{"role": "user", "content": "Weather?"}]
    mid = client.chat.completions.create(model="mid", messages=messages, logprobs=True, top_logprobs=2)
    assert cloud.bodies["openai"][-1]["logprobs"] is True and cloud.bodies["openai"][-1]["top_logprobs"] == 2
    assert mid.choices[0].logprobs.content[0].token == "It"
    frontier = client.chat.completions.create(model="frontier", messages=messages, logprobs=True)
    assert frontier.choices[0].logprobs is None
    assert frontier.model_extra["slmkit"]["notes"] == ["logprobs: tier 'frontier' (anthropic) has none"]
    assert "logprobs" not in cloud.bodies["anthropic"][-1]


def test_stop_sequences_reach_the_providers(served: Server, cloud: Cloud) -> None:
    client = served.client()
    client.chat.completions.create(model="mid", messages=[{"role": "user", "content": "hi"}], stop=["\n"])
    client.chat.completions.create(model="frontier", messages=[{"role": "user", "content": "hi"}], stop="END")
    assert cloud.bodies["openai"][-1]["stop"] == ["\n"] and cloud.bodies["anthropic"][-1]["stop_sequences"] == ["END"]


def test_on_device_json_and_logprobs_through_the_server(cloud: Cloud) -> None:
    """The embedded SmolLM2-135M answers in the schema (grammar) and with per-token logprobs."""
    tier = make_pipeline().spec.tier("on-device")
    engine = LlamaCppBackend(tier, resolve_model_file(tier.model, default_spec_path().parent))
    with Server(cloud_pipeline(cloud, engine)) as server:
        client = server.client()
        messages = [{"role": "user", "content": "ACME invoice, 129.50 EUR. Extract vendor and total."}]
        fmt = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": INVOICE}}
        reply = client.chat.completions.create(model="auto", messages=messages, response_format=fmt, max_tokens=80)
        assert reply.model_extra["slmkit"]["tier"] == "on-device"
        jsonschema.validate(json.loads(reply.choices[0].message.content), INVOICE)
        scored = client.chat.completions.create(model="on-device", messages=[{"role": "user", "content": "Name a color."}],
                                                logprobs=True, top_logprobs=2, max_tokens=8)
        content = scored.choices[0].logprobs.content
        assert "".join(e.token for e in content) == scored.choices[0].message.content
        assert len(content) == scored.usage.completion_tokens and all(len(e.top_logprobs) == 2 for e in content)
        streamed = list(client.chat.completions.create(model="on-device", messages=messages, response_format=fmt,
                                                       max_tokens=80, stream=True))
        jsonschema.validate(json.loads("".join(c.choices[0].delta.content or "" for c in streamed if c.choices)), INVOICE)
    engine.close()
