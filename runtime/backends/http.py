"""Cloud tiers over HTTP (httpx): OpenAI-compatible chat completions and the Anthropic Messages API.

Every failure becomes a BackendError whose reason is safe to trace (status, error type, never
headers or keys), so the pipeline can fall through to the next tier.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from slmkit.runtime.backends.base import BackendError, Generation, RemoteBackend, openai_finish_reason, stream_whole
from slmkit.runtime.request import ChatOptions
from slmkit.runtime.spec import TierSpec

ANTHROPIC_URL = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION = "2023-06-01"


def _api_key(tier: TierSpec) -> str | None:
    if not tier.api_key_env:
        return None
    key = os.environ.get(tier.api_key_env)
    if not key:
        raise BackendError(f"environment variable {tier.api_key_env} (the API key of tier {tier.name}) is not set")
    return key


def _post(client: httpx.Client, url: str, headers: dict[str, str], body: dict, timeout: float) -> dict:
    try:
        response = client.post(url, headers=headers, json=body, timeout=timeout)
    except httpx.TimeoutException:
        raise BackendError(f"timeout after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise BackendError(f"cannot reach {httpx.URL(url).netloc.decode()} ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise BackendError(f"HTTP {response.status_code} from {response.url.host}")
    try:
        data = response.json()
    except ValueError:
        raise BackendError("malformed response: not JSON") from None
    if not isinstance(data, dict):
        raise BackendError("malformed response: not a JSON object")
    return data


class _HttpBackend(RemoteBackend):
    def __init__(self, tier: TierSpec, client: httpx.Client | None = None) -> None:
        self.tier = tier
        self.client = client or httpx.Client()

    def stream(self, messages: list[dict], max_tokens: int, options: ChatOptions | None = None) -> Iterator[str | Generation]:
        return stream_whole(self, messages, max_tokens, options)

    def close(self) -> None:
        self.client.close()


class OpenAIBackend(_HttpBackend):
    """Any OpenAI-compatible `/chat/completions` (OpenAI, vLLM, llama.cpp server, Ollama, Gemini's).
    tools, tool_choice, response_format and logprobs go through as the client sent them."""

    name = "openai"

    def generate(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """One POST to `{base_url}/chat/completions`, temperature 0, with the client's answer-shaping
        options passed through; token counts from the provider's `usage` (0 when it sends none).
        Raises BackendError on a missing key, timeout, HTTP error or malformed reply.
        """
        key = _api_key(self.tier)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body: dict[str, Any] = {"model": self.tier.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if options is not None:
            if options.tools:
                body["tools"] = list(options.tools)
            if options.tool_choice is not None:
                body["tool_choice"] = options.tool_choice
            if options.response_format is not None:
                body["response_format"] = options.response_format
            if options.stop:
                body["stop"] = list(options.stop)
            if options.top_logprobs is not None and self.tier.can("logprobs"):
                body["logprobs"] = True
                body["top_logprobs"] = options.top_logprobs
        start = time.perf_counter()
        data = _post(self.client, self.tier.base_url.rstrip("/") + "/chat/completions", headers, body, self.tier.timeout_s)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            tool_calls = message.get("tool_calls") or None
            if message.get("content") is None and not tool_calls:
                raise KeyError("content")
            usage = data.get("usage") or {}
            return Generation(text=str(message.get("content") or ""), input_tokens=int(usage.get("prompt_tokens", 0)),
                              output_tokens=int(usage.get("completion_tokens", 0)),
                              latency_ms=(time.perf_counter() - start) * 1000, model=str(data.get("model", self.tier.model)),
                              finish_reason=openai_finish_reason(choice.get("finish_reason")),
                              tool_calls=list(tool_calls) if tool_calls else None,
                              logprobs=((choice.get("logprobs") or {}).get("content") or None) if "logprobs" in body else None)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise BackendError("malformed response: no choices[0].message.content or tool_calls") from None


# The tool through which an Anthropic tier answers a response_format request: forced, its input is the answer.
JSON_ANSWER_TOOL = "json_answer"


def anthropic_request(messages: list[dict], options: ChatOptions | None) -> dict[str, Any]:
    """OpenAI chat messages and options as a Messages API body (without model and max_tokens).

    `stop` becomes stop_sequences. System turns become `system`; assistant tool_calls become tool_use blocks; tool results become
    tool_result blocks in a user turn (consecutive results merged); function tools become tools with
    `input_schema`; tool_choice maps auto/required/none/named to auto/any/none/tool. response_format
    becomes one forced tool whose input_schema is the schema (a JSON object at the root).

    Raises BackendError when the request cannot be expressed (response_format together with tools,
    a schema whose root is not an object, tool arguments that are not JSON).
    """
    body: dict[str, Any] = {}
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    if system:
        body["system"] = system
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": message["content"]}
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": message["content"]}] if message.get("content") else []
            for call in message["tool_calls"]:
                try:
                    arguments = json.loads(call["function"].get("arguments") or "{}")
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                    raise BackendError("a tool call's arguments are not a JSON object") from None
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": call["function"]["name"],
                               "input": arguments})
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": role, "content": message["content"]})
    body["messages"] = turns
    if options is None:
        return body
    if options.stop:
        body["stop_sequences"] = list(options.stop)
    schema = options.json_schema()
    if schema is not None:
        if options.tools:
            raise BackendError("the Anthropic backend answers response_format through a forced tool, so it cannot "
                               "also take the request's tools")
        schema = schema or {"type": "object"}
        if schema.get("type", "object") != "object":
            raise BackendError("response_format: an Anthropic tier needs a schema whose root is an object")
        body["tools"] = [{"name": JSON_ANSWER_TOOL, "description": "Give the answer as this JSON object.",
                          "input_schema": schema}]
        body["tool_choice"] = {"type": "tool", "name": JSON_ANSWER_TOOL}
        return body
    if options.tools:
        body["tools"] = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
                          "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}}}
                         for t in options.tools]
    choice = options.tool_choice
    if isinstance(choice, dict):
        body["tool_choice"] = {"type": "tool", "name": choice.get("function", {}).get("name", "")}
    elif choice in ("auto", "required", "none"):
        body["tool_choice"] = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    return body


class AnthropicBackend(_HttpBackend):
    """The Anthropic Messages API (system prompt as a top-level field; tools as anthropic_request maps them)."""

    name = "anthropic"

    def generate(self, messages: list[dict], max_tokens: int, logprobs: bool = False,
                 options: ChatOptions | None = None) -> Generation:
        """One POST to `{base_url}/messages` (default base ANTHROPIC_URL; anthropic-version ANTHROPIC_VERSION),
        system prompt as the top-level field and tools mapped by `anthropic_request`. Raises BackendError
        on a missing key, timeout, HTTP error or malformed reply.
        """
        key = _api_key(self.tier)
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        body = {"model": self.tier.model, "max_tokens": max_tokens, **anthropic_request(messages, options)}
        start = time.perf_counter()
        data = _post(self.client, (self.tier.base_url or ANTHROPIC_URL).rstrip("/") + "/messages", headers, body,
                     self.tier.timeout_s)
        try:
            blocks = data["content"]
            text = "".join(block["text"] for block in blocks if block.get("type") == "text")
            uses = [block for block in blocks if block.get("type") == "tool_use"]
            finish = openai_finish_reason(data.get("stop_reason"))
            tool_calls = None
            if options is not None and options.json_schema() is not None:
                answer = next(b for b in uses if b["name"] == JSON_ANSWER_TOOL)
                text, finish = json.dumps(answer["input"], ensure_ascii=False), "stop" if finish == "tool_calls" else finish
            elif uses:
                tool_calls = [{"id": b["id"], "type": "function",
                               "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}), ensure_ascii=False)}}
                              for b in uses]
            usage = data.get("usage") or {}
            return Generation(text=text, input_tokens=int(usage.get("input_tokens", 0)),
                              output_tokens=int(usage.get("output_tokens", 0)),
                              latency_ms=(time.perf_counter() - start) * 1000, model=str(data.get("model", self.tier.model)),
                              finish_reason=finish, tool_calls=tool_calls)
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
            raise BackendError("malformed response: no content[].text or tool_use") from None
