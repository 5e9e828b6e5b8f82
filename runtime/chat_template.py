"""Chat templates rendered exactly as transformers renders them, in one place for all of slmkit.

Parity (both sides), `slmkit package` (the flattened `chat_format.json`) and the runtime's llama.cpp
and Core ML backends all compile a model's Jinja chat template here, so a template that works in
transformers works in every slmkit path, and one that cannot work is refused before long work.

The environment is transformers' (`transformers.utils.chat_template_utils._cached_compile_jinja_template`,
v4.43-5.x): an immutable sandbox with `trim_blocks`/`lstrip_blocks`, loop controls, the `{% generation %}`
tag (assistant masks; rendered as its body), `raise_exception`, `strftime_now`, a `tojson` that does not
escape HTML, and `dict`/`namespace` without underscore attributes. Templates are rendered with the
tokenizer's special tokens as strings (`bos_token`, `eos_token`, ...) plus `messages`, `tools`,
`documents` and `add_generation_prompt`, as `apply_chat_template` passes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.validation import read_json

# How a system prompt joins the first user turn when the template has no system role: Gemma's own
# templates fold it this way (Gemma 3's `first_user_prefix`), and Gemma 2-era ones refuse the role.
SYSTEM_JOIN = "\n\n"
# The special-token attributes transformers passes to a template (`SPECIAL_TOKENS_ATTRIBUTES`).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

Strftime = Callable[[str], str]
# A date a template reads from `strftime_now`, kept live in a flattened chat format (chat_format.json):
# `⟦now:FORMAT⟧`, filled by each port from its clock with C-locale strftime of these directives.
DATE_SLOT = re.compile("\u27e6now:([^\u27e7]*)\u27e7")
DATE_DIRECTIVES = frozenset("dmYybBaAHMSj%")


def fill_dates(text: str, now: datetime) -> str:
    """`text` with every date slot replaced by `now` formatted as the slot says (vectors/date_slots.jsonl)."""
    return DATE_SLOT.sub(lambda m: now.strftime(m.group(1)), text)


def _now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplateError(SlmkitError):
    """A template that cannot be compiled, or that raised while rendering."""


def _environment(strftime: Strftime) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; renders its body."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Callable[[], str]) -> str:
            return caller()

    class Namespace(jinja2.utils.Namespace):
        """jinja2's namespace without underscore attributes (no reach into Python internals)."""

        def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - jinja2's own signature trick
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                Namespace._check(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name: Any) -> None:
            if isinstance(name, str) and name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"chat templates cannot set underscore attributes ({name!r})")

    class Dict:
        def __call__(self, *args: Any, **kwargs: Any) -> dict:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any, **kwargs: Any) -> dict:
            return dict.fromkeys(*args, **kwargs)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime, dict=Dict(), namespace=Namespace)
    return env


def fold_system(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with a leading system message joined to the first user turn (SYSTEM_JOIN);
    without a user turn after it, the system text becomes the first user turn."""
    messages = [dict(m) for m in messages]
    if not messages or messages[0].get("role") != "system":
        return messages
    system, rest = messages[0], messages[1:]
    if rest and rest[0].get("role") == "user" and isinstance(rest[0].get("content"), str):
        return [{**rest[0], "content": str(system.get("content", "")) + SYSTEM_JOIN + rest[0]["content"]}, *rest[1:]]
    return [{"role": "user", "content": system.get("content", "")}, *rest]


class ChatTemplate:
    """One compiled chat template with the tokenizer's special tokens.

    `render` raises ChatTemplateError (a SlmkitError) with the template's own message, never a
    jinja2 traceback. `strftime` backs `strftime_now` (default: the local clock, as transformers).
    """

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None, *,
                 strftime: Strftime = _now, origin: str = "the chat template") -> None:
        import jinja2

        self.source = source
        self.origin = origin
        self.special_tokens = {k: v for k, v in (special_tokens or {}).items() if v is not None}
        try:
            self._compiled = _environment(strftime).from_string(source)
        except jinja2.exceptions.TemplateSyntaxError as exc:
            raise ChatTemplateError(f"{origin} is not valid Jinja (line {exc.lineno}: {exc.message}).") from None

    @property
    def uses_date(self) -> bool:
        """Whether the rendering depends on the day it is rendered (`strftime_now`)."""
        return "strftime_now" in self.source

    def with_strftime(self, strftime: Strftime) -> ChatTemplate:
        return ChatTemplate(self.source, self.special_tokens, strftime=strftime, origin=self.origin)

    def render(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True, *,
               tools: list[dict] | None = None, documents: list[dict] | None = None, **kwargs: Any) -> str:
        """The prompt text for `messages` (OpenAI-style dicts), as `apply_chat_template(tokenize=False)` gives it."""
        import jinja2

        try:
            return self._compiled.render(messages=list(messages), tools=tools, documents=documents,
                                         add_generation_prompt=add_generation_prompt,
                                         **{**self.special_tokens, **kwargs})
        except jinja2.exceptions.TemplateError as exc:
            raise ChatTemplateError(f"{self.origin} refused the conversation: {exc}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise ChatTemplateError(f"{self.origin} failed on the conversation: {type(exc).__name__}: {exc}") from None

    def refuses_system(self) -> bool:
        """Whether the template raises on a system message that it accepts folded into the user turn."""
        probe = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
        try:
            self.render(probe)
        except ChatTemplateError:
            try:
                self.render(fold_system(probe))
            except ChatTemplateError:
                return False
            return True
        return False

    def render_chat(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                    **kwargs: Any) -> str:
        """`render`, with a system prompt folded into the first user turn when the template has no
        system role (raises on it); the way every slmkit runtime sends a conversation."""
        try:
            return self.render(messages, add_generation_prompt, **kwargs)
        except ChatTemplateError:
            if not messages or messages[0].get("role") != "system":
                raise
            return self.render(fold_system(messages), add_generation_prompt, **kwargs)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _json_object(path: Path) -> dict[str, Any]:
    """A tokenizer folder's JSON object file. Raises SlmkitError when it is unreadable, not JSON,
    or not an object."""
    data = read_json(path, "a tokenizer configuration (JSON)")
    if not isinstance(data, dict):
        raise SlmkitError(f"{path} is not a JSON object.")
    return data


def template_source(folder: Path) -> str | None:
    """The default chat template of a tokenizer folder, from where transformers looks for it:
    `chat_template.jinja`, `chat_template.json`, then `tokenizer_config.json` (a string, or a list
    of named templates whose "default" is used)."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "chat_template.json").is_file():
        template = _json_object(folder / "chat_template.json").get("chat_template")
        if isinstance(template, str):
            return template
    config = _json_object(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    template = config.get("chat_template")
    if isinstance(template, list):
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
    return template if isinstance(template, str) and template else None


def special_tokens(folder: Path) -> dict[str, str]:
    """Special-token strings as transformers passes them to templates (tokenizer_config.json, then
    special_tokens_map.json); a token set to null is absent (it renders as an empty string)."""
    found: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the config wins
        if (folder / name).is_file():
            data = _json_object(folder / name)
            for key in SPECIAL_TOKEN_NAMES:
                if key in data:
                    text = _token_text(data[key])
                    if text is None:
                        found.pop(key, None)
                    else:
                        found[key] = text
    return found


def load_chat_template(folder: Path, *, strftime: Strftime = _now) -> ChatTemplate | None:
    """The folder's chat template ready to render, or None when it has none."""
    source = template_source(folder)
    if source is None:
        return None
    return ChatTemplate(source, special_tokens(folder), strftime=strftime, origin=f"The chat template in {folder}")
