"""Cloud tiers over HTTP (httpx): OpenAI-compatible chat completions and the Anthropic Messages API.

Every failure becomes a BackendError whose reason is safe to trace (status, error type, never
headers or keys), so the pipeline can fall through to the next tier.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx

from slmkit.runtime.backends.base import BackendError, Generation, openai_finish_reason, stream_whole
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


class _HttpBackend:
    def __init__(self, tier: TierSpec, client: httpx.Client | None = None) -> None:
        self.tier = tier
        self.client = client or httpx.Client()

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str | Generation]:
        return stream_whole(self, messages, max_tokens)

    def close(self) -> None:
        self.client.close()


class OpenAIBackend(_HttpBackend):
    """Any OpenAI-compatible `/chat/completions` (OpenAI, vLLM, llama.cpp server, Ollama, Gemini's)."""

    name = "openai"

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False) -> Generation:
        key = _api_key(self.tier)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"model": self.tier.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        start = time.perf_counter()
        data = _post(self.client, self.tier.base_url.rstrip("/") + "/chat/completions", headers, body, self.tier.timeout_s)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
            return Generation(text=str(text), input_tokens=int(usage.get("prompt_tokens", 0)),
                              output_tokens=int(usage.get("completion_tokens", 0)),
                              latency_ms=(time.perf_counter() - start) * 1000, model=str(data.get("model", self.tier.model)),
                              finish_reason=openai_finish_reason(choice.get("finish_reason")))
        except (KeyError, IndexError, TypeError, ValueError):
            raise BackendError("malformed response: no choices[0].message.content") from None


class AnthropicBackend(_HttpBackend):
    """The Anthropic Messages API (system prompt as a top-level field)."""

    name = "anthropic"

    def generate(self, messages: list[dict[str, str]], max_tokens: int, logprobs: bool = False) -> Generation:
        key = _api_key(self.tier)
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body = {"model": self.tier.model, "max_tokens": max_tokens,
                "messages": [m for m in messages if m["role"] != "system"]}
        if system:
            body["system"] = system
        start = time.perf_counter()
        data = _post(self.client, (self.tier.base_url or ANTHROPIC_URL).rstrip("/") + "/messages", headers, body,
                     self.tier.timeout_s)
        try:
            text = "".join(block["text"] for block in data["content"] if block.get("type") == "text")
            usage = data.get("usage") or {}
            return Generation(text=text, input_tokens=int(usage.get("input_tokens", 0)),
                              output_tokens=int(usage.get("output_tokens", 0)),
                              latency_ms=(time.perf_counter() - start) * 1000, model=str(data.get("model", self.tier.model)),
                              finish_reason=openai_finish_reason(data.get("stop_reason")))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BackendError("malformed response: no content[].text") from None
