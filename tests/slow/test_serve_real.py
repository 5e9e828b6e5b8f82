"""`slmkit serve` over a real on-device model (SmolLM2-135M Q4_K_M on llama.cpp), driven over HTTP:
the same request answers the same way every time, and a client leaving mid-stream frees the engine."""

from __future__ import annotations

import time

import httpx
import pytest

from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.spec import TierSpec
from tests.conftest import run_cli
from tests.runtime.test_server import Server, make_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("serve") / "smollm2-q4"
    result = run_cli("convert", "smollm2-135m", "--target", "gguf", "--quant", "q4_k_m", "--output", str(out), timeout=1800)
    assert result.returncode == 0, result.stderr
    path = next(out.glob("*.gguf"))
    tier = TierSpec.model_validate({"name": "mid", "backend": "llama.cpp", "model": str(path), "context_tokens": 2048,
                                    "threads": 2, "max_tokens": 400})
    with Server(make_pipeline("medium", 0.99, mid=LlamaCppBackend(tier, path))) as server:
        yield server


def _answer(server: Server, text: str, max_tokens: int = 12) -> str:
    reply = httpx.post(f"{server.base_url}/chat/completions", timeout=120, json={
        "model": "mid", "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]})
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


def test_temperature_zero_answers_are_identical_across_requests(served: Server) -> None:
    answers = []
    for i in range(10):  # 20 answers: back to back (a fully cached prompt) and after another request
        answers.append(_answer(served, "Name a color."))
        answers.append(_answer(served, "Name a color."))
        _answer(served, f"Request {i}: describe the sea in one sentence.", 20)
    assert len(set(answers)) == 1, set(answers)


def test_a_client_leaving_mid_stream_frees_the_engine(served: Server) -> None:
    body = {"model": "mid", "stream": True, "max_tokens": 400,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]}
    with httpx.stream("POST", f"{served.base_url}/chat/completions", json=body, timeout=120) as reply:
        lines = reply.iter_lines()
        for _ in range(3):
            next(lines)
    started = time.monotonic()
    assert _answer(served, "Name a color.")
    assert time.monotonic() - started < 30, "the next request waited for the abandoned story"
