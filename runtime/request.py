"""What the pipeline receives: a chat request (OpenAI-style messages) and what it asks of the answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# What a request may ask of the answering tier beyond text (OpenAI chat-completions parameters).
# "tools" and "response_format" are hard: a tier that cannot honour them is routed past.
# "logprobs" is soft: tiers that have them return them; the others answer with logprobs null and
# the trace says so (refusing would send a simple request to the frontier just to get null back).
Feature = Literal["tools", "response_format", "logprobs"]
FEATURES: tuple[Feature, ...] = ("tools", "response_format", "logprobs")
HARD_FEATURES: tuple[Feature, ...] = ("tools", "response_format")
MAX_TOP_LOGPROBS = 20  # OpenAI's limit for top_logprobs


@dataclass(frozen=True)
class ChatOptions:
    """The OpenAI parameters that shape the answer, kept as the client sent them.

    `tools`: function tools ({"type": "function", "function": {"name", "description", "parameters"}});
    `tool_choice`: "none" | "auto" | "required" | {"type": "function", "function": {"name": ...}};
    `response_format`: {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name", "schema",
    "strict"}}; `top_logprobs`: None for no log-probabilities, else how many alternatives per token (0-20);
    `stop`: the answer ends before the first of these (runtime/stops.py; engines that can stop early do).
    """

    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    top_logprobs: int | None = None
    stop: tuple[str, ...] = ()

    def json_schema(self) -> dict[str, Any] | None:
        """The schema the answer must match: {} for json_object (any JSON object), None for free text."""
        kind = (self.response_format or {}).get("type")
        if kind == "json_object":
            return {}
        if kind == "json_schema":
            return dict((self.response_format.get("json_schema") or {}).get("schema") or {"type": "object"})
        return None


@dataclass(frozen=True)
class Request:
    """One request. `user` is the last user turn; `system` the system prompt ("" when none).

    `after_user` holds what follows the last user turn in a tool-calling exchange: the assistant's
    tool calls and the tool results the client sends back (OpenAI message dicts, kept as sent).
    """

    user: str
    system: str = ""
    history: tuple[dict[str, Any], ...] = ()
    max_tokens: int | None = None
    id: str = ""
    options: ChatOptions = field(default_factory=ChatOptions)
    after_user: tuple[dict[str, Any], ...] = ()

    def earlier_user_turns(self, turns: int) -> tuple[str, ...]:
        """The last `turns` user messages before `user`, oldest first."""
        users = [m.get("content", "") for m in self.history if m.get("role") == "user"]
        return tuple(users[max(0, len(users) - turns):]) if turns > 0 else ()

    def messages(self) -> list[dict[str, Any]]:
        """The chat as a backend sends it: system, earlier turns, the user turn, any tool exchange after it."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return (head + [dict(m) for m in self.history] + [{"role": "user", "content": self.user}]
                + [dict(m) for m in self.after_user])

    def required_features(self) -> tuple[Feature, ...]:
        """The hard features (HARD_FEATURES) an answering tier must have."""
        calls_tools = bool(self.options.tools) and self.options.tool_choice != "none"
        tool_turns = any(m.get("role") == "tool" or m.get("tool_calls") for m in (*self.history, *self.after_user))
        needed: list[Feature] = ["tools"] if calls_tools or tool_turns else []
        if self.options.json_schema() is not None:
            needed.append("response_format")
        return tuple(needed)

    @classmethod
    def from_messages(cls, messages: list[dict[str, Any]], **kwargs: Any) -> Request:
        """Split OpenAI-format messages: the system prompt(s), the history, the last user turn and the
        tool exchange after it.

        Raises ValueError when there is no user turn, or when anything but assistant tool calls and
        tool results follows the last one.
        """
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not users:
            raise ValueError("the last message must have role 'user' (there is no user turn)")
        last = users[-1]
        after = messages[last + 1:]
        if any(m.get("role") not in ("assistant", "tool") or (m.get("role") == "assistant" and not m.get("tool_calls"))
               for m in after):
            raise ValueError("the last message must have role 'user' (or, in a tool exchange, be a tool result "
                             "following the assistant's tool_calls)")
        system = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        history = tuple(_turn(m) for m in messages[:last] if m.get("role") in ("user", "assistant", "tool"))
        return cls(user=str(messages[last].get("content", "")), system=system, history=history,
                   after_user=tuple(_turn(m) for m in after), **kwargs)


def _turn(message: dict[str, Any]) -> dict[str, Any]:
    """A history turn: role and text content, plus tool_calls / tool_call_id where present."""
    turn: dict[str, Any] = {"role": message["role"], "content": str(message.get("content") or "")}
    for key in ("tool_calls", "tool_call_id", "name"):
        if message.get(key):
            turn[key] = message[key]
    return turn
