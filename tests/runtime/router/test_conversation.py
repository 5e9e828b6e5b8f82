"""Conversation routing: the last message alone and with the turns before it; the costlier route wins."""

from __future__ import annotations

from slmkit.runtime.default import default_spec_path
from slmkit.runtime.request import Request
from slmkit.runtime.router.conversation import ConversationRouter
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import load_spec


class KeywordRouter:
    """complex when the text it reads mentions a story, else simple; records what it read."""

    method = "keyword"

    def __init__(self) -> None:
        self.read: list[Request] = []

    def decide(self, request: Request) -> RouteDecision:
        self.read.append(request)
        text = " ".join([*request.earlier_user_turns(2), request.user])
        label = "complex" if "story" in text else "simple"
        return RouteDecision(label, 0.95, latency_ms=2.0, method=self.method)


def _router(turns: int = 2) -> tuple[ConversationRouter, KeywordRouter]:
    spec = load_spec(default_spec_path())
    spec.router.truncation.history_turns = turns
    inner = KeywordRouter()
    return ConversationRouter(inner, spec), inner


STORY = ({"role": "user", "content": "Write a story about a lighthouse keeper."}, {"role": "assistant", "content": "Once…"})


def test_a_follow_up_keeps_the_tier_of_the_task_it_continues() -> None:
    router, inner = _router()
    decision = router.decide(Request(user="thanks, now make it shorter", history=STORY))
    assert decision.label == "complex" and decision.conversation["chosen"] == "conversation"
    assert decision.conversation["last_message"] == "simple" and decision.conversation["turns_read"] == 1
    assert decision.latency_ms == 4.0 and decision.to_dict()["conversation"]["conversation"] == "complex"
    assert [r.history for r in inner.read] == [(), STORY]  # the last message alone, then with its history


def test_a_harder_new_request_is_not_routed_down_by_an_easy_conversation() -> None:
    router, _ = _router()
    easy = ({"role": "user", "content": "What's the capital of France?"}, {"role": "assistant", "content": "Paris."})
    decision = router.decide(Request(user="Now write a story set in Paris.", history=easy))
    assert decision.label == "complex" and decision.conversation["chosen"] == "last_message"


def test_a_single_message_is_routed_once() -> None:
    router, inner = _router()
    decision = router.decide(Request(user="hello"))
    assert decision.label == "simple" and decision.conversation is None and len(inner.read) == 1
    assert "conversation" not in decision.to_dict()
