"""Flatten a model's Jinja chat template into per-role prefix/suffix strings (`chat_format.json`).

Phones should not run a template engine. Rendering the template around marker messages recovers
what it puts before and after each role's content; the result is then checked by re-rendering a
conversation both ways — a template that is not a plain concatenation is refused, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError

MARK = {"system": "\u27e6SYSTEM\u27e7", "user": "\u27e6USER1\u27e7", "assistant": "\u27e6ASSISTANT\u27e7",
        "user2": "\u27e6USER2\u27e7"}
SYSTEM_JOIN = "\n\n"   # how templates without a system role (Gemma) fold it into the first user turn


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return str(value) if value else ""


def load_template(tokenizer_dir: Path) -> tuple[str, str, str]:
    """(template, bos, eos) from tokenizer_config.json or chat_template.jinja."""
    config_path = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template and (tokenizer_dir / "chat_template.jinja").is_file():
        template = (tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    if not template:
        raise SlmkitError(f"{tokenizer_dir} has no chat template.", hint="Package an instruction-tuned model.")
    return template, _token(config.get("bos_token")), _token(config.get("eos_token"))


def _renderer(template: str, bos: str, eos: str):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    compiled = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)

    def render(messages: list[dict[str, str]], generation: bool) -> str:
        try:
            return compiled.render(messages=messages, add_generation_prompt=generation, bos_token=bos, eos_token=eos,
                                   raise_exception=raise_exception)
        except TemplateError as exc:
            raise SlmkitError(f"The chat template failed on a plain conversation: {exc}") from None

    return render


def render_flat(fmt: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """What the Kotlin/Swift ChatFormat.render produce (kept in step with them): the text before the
    first message, between each pair of consecutive roles, and after the last (generation prompt)."""
    if fmt["system_as_user_prefix"] and messages and messages[0]["role"] == "system":
        rest = messages[1:]
        if rest and rest[0]["role"] == "user":
            rest = [{"role": "user", "content": messages[0]["content"] + SYSTEM_JOIN + rest[0]["content"]}, *rest[1:]]
        messages = rest
    out, previous = [], None
    for m in messages:
        out.append(fmt["start"][m["role"]] if previous is None else fmt["between"][f"{previous}>{m['role']}"])
        out.append(m["content"])
        previous = m["role"]
    out.append(fmt["end"][previous])
    return "".join(out)


def _between(text: str, start_mark: str | None, end_mark: str | None) -> str:
    start = 0 if start_mark is None else text.index(start_mark) + len(start_mark)
    end = len(text) if end_mark is None else text.index(end_mark, start)
    return text[start:end]


def flatten(template: str, bos: str, eos: str) -> dict[str, Any]:
    render = _renderer(template, bos, eos)
    u1, a, u2, s = MARK["user"], MARK["assistant"], MARK["user2"], MARK["system"]
    chat = [{"role": "user", "content": u1}, {"role": "assistant", "content": a}, {"role": "user", "content": u2}]
    plain = render(chat, True)
    with_system = render([{"role": "system", "content": s}, *chat], True)
    fmt: dict[str, Any] = {
        "start": {"user": _between(plain, None, u1)},
        "between": {"user>assistant": _between(plain, u1, a), "assistant>user": _between(plain, a, u2)},
        "end": {"user": _between(plain, u2, None)},
        "system_as_user_prefix": s + SYSTEM_JOIN + u1 in with_system,
    }
    if not fmt["system_as_user_prefix"]:
        if s not in with_system:
            raise SlmkitError("The chat template drops the system prompt; the mobile runtime cannot reproduce it.")
        fmt["start"]["system"] = _between(with_system, None, s)
        fmt["between"]["system>user"] = _between(with_system, s, u1)
    end_of_turn = next((line.strip() for line in fmt["between"]["assistant>user"].splitlines() if line.strip()), "")
    fmt["stops"] = [t for t in dict.fromkeys([end_of_turn, eos]) if t]
    probes = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {there}!"},
               {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"}],
              [{"role": "user", "content": "Capital of France?"}]]
    for probe in probes:
        if render_flat(fmt, probe) != render(probe, True):
            raise SlmkitError("The flattened chat template does not reproduce the original; refusing to guess.")
    return fmt


VECTOR_CONVERSATIONS = {
    "one user turn": [{"role": "user", "content": "Capital of France?"}],
    "system then user": [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Capital of France?"}],
    "multi-turn with braces and unicode": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Résumé {user} of «this» 🚀"},
        {"role": "assistant", "content": "Done."}, {"role": "user", "content": "And again?"}],
}


def write_chat_format(tokenizer_dir: Path, path: Path, vectors: Path) -> dict[str, Any]:
    """chat_format.json, plus golden vectors pairing it with the Jinja template's own rendering."""
    template, bos, eos = load_template(tokenizer_dir)
    fmt = flatten(template, bos, eos)
    render = _renderer(template, bos, eos)
    path.write_text(json.dumps(fmt, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = [{"name": name, "format": fmt, "messages": messages, "expected": render(messages, True)}
            for name, messages in VECTOR_CONVERSATIONS.items()]
    vectors.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return fmt
