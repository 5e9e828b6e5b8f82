"""What the pipeline receives: a chat request (OpenAI-style messages)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One request. `user` is the last user turn; `system` the system prompt ("" when none)."""

    user: str
    system: str = ""
    history: tuple[dict[str, str], ...] = ()
    max_tokens: int | None = None
    id: str = ""
    stop: tuple[str, ...] = ()  # the answer ends before the first of these (runtime/stops.py)

    def earlier_user_turns(self, turns: int) -> tuple[str, ...]:
        """The last `turns` user messages before `user`, oldest first."""
        users = [m.get("content", "") for m in self.history if m.get("role") == "user"]
        return tuple(users[max(0, len(users) - turns):]) if turns > 0 else ()

    def messages(self) -> list[dict[str, str]]:
        """The chat as a backend sends it: system, earlier turns, the user turn."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(m) for m in self.history] + [{"role": "user", "content": self.user}]

    @classmethod
    def from_messages(cls, messages: list[dict[str, str]], **kwargs) -> Request:
        """Split OpenAI-format messages: the system prompt(s), the history, the final user turn."""
        if not messages or messages[-1].get("role") != "user":
            raise ValueError("the last message must have role 'user'")
        system = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        history = tuple({"role": m["role"], "content": str(m.get("content", ""))}
                        for m in messages[:-1] if m.get("role") in ("user", "assistant"))
        return cls(user=str(messages[-1].get("content", "")), system=system, history=history, **kwargs)
