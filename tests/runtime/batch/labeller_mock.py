"""An OpenAI-compatible labeller on a real local HTTP port (what `logs label` talks to in tests)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYWORDS = (("story", "creative_writing"), ("poem", "creative_writing"), ("solve", "math_reasoning"),
            ("sentiment", "sentiment"), ("summar", "summarization"), ("intent", "intent_classification"))


def category_for(text: str) -> str:
    lowered = text.lower()
    return next((category for word, category in KEYWORDS if word in lowered), "open_qa")


class MockLabeller:
    """Answers {"task_category": ...} by keyword. `fail_first`: the first call for each request text
    gets HTTP 429; `garble`: texts containing it get an answer that is not a category; `delay_s` per call."""

    def __init__(self, fail_first: bool = False, garble: str | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[dict] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.fail_first, self.garble, self.delay_s = fail_first, garble, delay_s
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                with mock.lock:
                    mock.calls.append(body)
                    first = text not in mock.seen
                    mock.seen.add(text)
                time.sleep(mock.delay_s)
                if mock.fail_first and first:
                    self.send_response(429)
                    self.end_headers()
                    return
                category = "not-a-category" if mock.garble and mock.garble in text else category_for(text)
                payload = {"model": "mock-labeller-1", "choices": [{"message": {"role": "assistant", "content":
                           json.dumps({"task_category": category})}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 100, "completion_tokens": 10}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except BrokenPipeError:   # the client was killed mid-request (the resume test does that)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> MockLabeller:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def spec_with_labeller(url: str) -> dict:
    """The default spec plus a `labeller` tier: OpenAI-compatible at `url`, $5 / $25 per million tokens."""
    from slmkit.runtime.default import default_spec_path

    spec = json.loads(default_spec_path().read_text(encoding="utf-8"))
    spec["tiers"].append({"name": "labeller", "backend": "openai", "model": "mock-labeller", "base_url": url,
                          "price_in_per_mtok": 5.0, "price_out_per_mtok": 25.0, "timeout_s": 10})
    return spec
