"""`slmkit serve` driven by the clients users plug it into: LangChain (`bind_tools`,
`with_structured_output`) and LiteLLM, against the embedded SmolLM2 on llama.cpp and cloud tiers
mocked at the HTTP level (tests/runtime/test_server_features.py). Installed by `make test-slow`
(the `clients` extra)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.default import default_spec_path
from slmkit.runtime.models.embedded import resolve_model_file
from tests.runtime.test_server import Server, make_pipeline
from tests.runtime.test_server_features import WEATHER, Cloud, cloud_pipeline

pytestmark = pytest.mark.slow


class Invoice(BaseModel):
    """An extracted invoice."""

    vendor: str = Field(max_length=40)
    total: float


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, Cloud]]:
    tier = make_pipeline().spec.tier("on-device")
    engine = LlamaCppBackend(tier, resolve_model_file(tier.model, default_spec_path().parent))
    cloud = Cloud()
    with Server(cloud_pipeline(cloud, engine)) as server:
        yield server, cloud
    engine.close()


def _langchain():
    return pytest.importorskip("langchain_openai", reason="the `clients` extra: pip install -e '.[clients]'")


def test_langchain_bind_tools_gets_tool_calls_from_the_cloud_tier(served) -> None:
    from langchain_core.messages import ToolMessage

    ChatOpenAI = _langchain().ChatOpenAI

    server, cloud = served
    llm = ChatOpenAI(base_url=server.base_url, api_key="unused", model="auto", max_retries=0)
    reply = llm.bind_tools([WEATHER]).invoke("What's the weather in Paris?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "get_weather" and reply.tool_calls[0]["args"] == {"city": "Paris"}
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    final = llm.bind_tools([WEATHER]).invoke(["What's the weather in Paris?", reply,
                                              ToolMessage("sunny, 21 C", tool_call_id=reply.tool_calls[0]["id"])])
    assert final.content == "It is sunny in Paris." and cloud.bodies["openai"][-1]["messages"][-1]["role"] == "tool"


def test_langchain_structured_output_on_device_is_grammar_constrained(served) -> None:
    ChatOpenAI = _langchain().ChatOpenAI

    server, _ = served
    llm = ChatOpenAI(base_url=server.base_url, api_key="unused", model="on-device", max_retries=0, max_tokens=80)
    invoice = llm.with_structured_output(Invoice, method="json_schema").invoke(
        "ACME Corp invoice, total 129.50 EUR. Extract the vendor and the total.")
    assert isinstance(invoice, Invoice)


def test_litellm_completion_tools_and_json(served) -> None:
    litellm = pytest.importorskip("litellm", reason="the `clients` extra: pip install -e '.[clients]'")
    server, _ = served
    common = {"api_base": server.base_url, "api_key": "unused", "num_retries": 0}
    text = litellm.completion(model="openai/on-device", messages=[{"role": "user", "content": "Name a color."}],
                              max_tokens=8, **common)
    assert text.choices[0].message.content and text.choices[0].finish_reason in ("stop", "length")
    tools = litellm.completion(model="openai/auto", messages=[{"role": "user", "content": "Weather in Paris?"}],
                               tools=[WEATHER], **common)
    assert tools.choices[0].message.tool_calls[0].function.name == "get_weather"
    structured = litellm.completion(model="openai/on-device", max_tokens=80, messages=[
        {"role": "user", "content": "ACME Corp invoice, total 129.50 EUR. Extract it."}],
        response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": Invoice.model_json_schema()}},
        **common)
    Invoice.model_validate(json.loads(structured.choices[0].message.content))
