"""Routing a conversation, not only its last message.

With `router.truncation.history_turns` > 0, a request whose history holds earlier user turns is
routed twice by the spec's router: the last user message alone, and the last message read with
the `history_turns` user messages before it. The decision whose policy tier is costlier wins
(tiers are listed cheapest first; a tie keeps the last message's decision). So a follow-up such as
"thanks, now make it shorter" keeps the tier of the task it continues, and a new, harder request
is never routed down by the easier conversation before it. Pinned by vectors/conversation.jsonl.
"""

from __future__ import annotations

import dataclasses

from slmkit.runtime.policy import choose_tier
from slmkit.runtime.request import Request
from slmkit.runtime.router.decision import RouteDecision
from slmkit.runtime.spec import PolicySpec, RoutingSpec


def costlier(last: RouteDecision, whole: RouteDecision, policy: PolicySpec, tiers: list[str]) -> tuple[RouteDecision, str]:
    """The decision whose policy tier comes later in `tiers` (names, cheapest first; a tie: `last`),
    and which one it was: "last_message" or "conversation"."""
    rank = [tiers.index(choose_tier(decision, policy).tier) for decision in (last, whole)]
    return (whole, "conversation") if rank[1] > rank[0] else (last, "last_message")


class ConversationRouter:
    def __init__(self, inner, spec: RoutingSpec) -> None:
        self.inner = inner
        self.spec = spec
        self.method = inner.method

    def decide(self, request: Request) -> RouteDecision:
        """The last message alone, and (when the request has earlier user turns within `history_turns`)
        the whole conversation: the costlier route of the two wins (`costlier`), so a hard thread is not
        sent on-device by a short follow-up. `conversation` in the decision says which was chosen.
        """
        turns = self.spec.router.truncation.history_turns
        last = self.inner.decide(dataclasses.replace(request, history=()))
        earlier = request.earlier_user_turns(turns) if request.history else ()
        if not earlier:
            return last
        whole = self.inner.decide(request)
        chosen, which = costlier(last, whole, self.spec.policy, [tier.name for tier in self.spec.tiers])
        decision = dataclasses.replace(chosen, latency_ms=last.latency_ms + whole.latency_ms,
                                       tokens=last.tokens + whole.tokens)
        decision.conversation = {"turns_read": len(earlier), "chosen": which, "last_message": last.label,
                                 "last_message_confidence": round(last.confidence, 6), "conversation": whole.label,
                                 "conversation_confidence": round(whole.confidence, 6)}
        return decision
