"""Chat templates render as transformers renders them, in every slmkit path, and fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmkit.runtime.chat_template import ChatTemplate, ChatTemplateError, fold_system, load_chat_template

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"}]
# Templates in shapes found on the hub: the tags and globals transformers provides.
TEMPLATES = {
    "generation tag (assistant masks)": (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
        "{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{% else %}"
        "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    "loop controls": "{% for m in messages %}{% if m['role'] == 'system' %}{% continue %}{% endif %}{{ m['content'] }};{% endfor %}",
    "tojson without HTML escaping": "{{ messages | tojson }}{{ tools | tojson }}",
    "namespace": "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
    "strftime_now, unguarded": "Today Date: {{ strftime_now('%d %b %Y') }}\n{{ messages[-1]['content'] }}",
    "documents": "{% for d in documents or [] %}[{{ d['title'] }}]{% endfor %}{{ messages[-1]['content'] }}",
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_renders_exactly_as_transformers(name: str, tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token="<s>", eos_token="</s>")
    hf.chat_template = TEMPLATES[name]
    kwargs = {"documents": [{"title": "A & B", "text": "x"}]} if name == "documents" else {}
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather <b>now</b> in «city»"}}]
    messages = CHAT + [{"role": "user", "content": "<tag> & «ünïcode»"}]
    expected = hf.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True, **kwargs)
    ours = ChatTemplate(TEMPLATES[name], {"bos_token": "<s>", "eos_token": "</s>"})
    assert ours.render(messages, tools=tools, **kwargs) == expected


def test_strftime_now_is_the_clock_unless_a_slot_is_asked_for() -> None:
    from datetime import datetime

    template = ChatTemplate(TEMPLATES["strftime_now, unguarded"])
    assert datetime.now().strftime("%d %b %Y") in template.render(CHAT) and template.uses_date
    assert "Today Date: <%d>" in template.with_strftime(lambda fmt: f"<{fmt[:2]}>").render(CHAT)
    assert not ChatTemplate(TEMPLATES["namespace"]).uses_date


def test_errors_are_one_line_never_a_jinja_traceback() -> None:
    with pytest.raises(ChatTemplateError, match=r"not valid Jinja \(line 1: .*unknown tag 'frobnicate'"):
        ChatTemplate("{% frobnicate %}")
    refusing = ChatTemplate("{{ raise_exception('System role not supported') }}")
    with pytest.raises(ChatTemplateError, match="refused the conversation: System role not supported"):
        refusing.render(CHAT)
    with pytest.raises(ChatTemplateError, match="failed on the conversation"):
        ChatTemplate("{{ messages[0]['content'] + 1 }}").render(CHAT)


def test_a_template_reaching_for_python_internals_fails_safely() -> None:
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ messages.__class__.__mro__[1].__subclasses__() }}").render(CHAT)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{% set ns = namespace(_x=1) %}{{ ns._x }}").render(CHAT)


GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
          "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


def test_a_refused_system_prompt_is_folded_into_the_first_user_turn() -> None:
    template = ChatTemplate(GEMMA2, {"bos_token": "<bos>"})
    assert template.refuses_system()
    text = template.render_chat(CHAT)
    assert text.startswith("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n")
    assert fold_system(CHAT[:1]) == [{"role": "user", "content": "Be brief."}]
    assert not ChatTemplate(TEMPLATES["namespace"]).refuses_system()


def test_loaded_from_a_folder_where_transformers_looks(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"content": "<s>"}, "eos_token": "</s>", "pad_token": None,
        "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D"}]}))
    template = load_chat_template(tmp_path)
    assert template is not None and template.render(CHAT) == "<s>D" and "pad_token" not in template.special_tokens
    (tmp_path / "chat_template.jinja").write_text("J{{ eos_token }}")
    assert load_chat_template(tmp_path).render(CHAT) == "J</s>"
    (tmp_path / "chat_template.jinja").unlink()
    (tmp_path / "tokenizer_config.json").write_text("{}")
    assert load_chat_template(tmp_path) is None
