"""Chat templates flattened for the phones: exact for concatenating templates, refused otherwise."""
import json

import pytest

from slmkit.converter.errors import SlmkitError
from datetime import datetime

from slmkit.converter.package.chat_format import VECTOR_CONVERSATIONS, flatten, render_flat, write_chat_format
from slmkit.runtime.chat_template import ChatTemplate


def _template(source: str, bos: str, eos: str) -> ChatTemplate:
    return ChatTemplate(source, {"bos_token": bos, "eos_token": eos})

# SmolLM2-135M-Instruct's template: ChatML, with a default system prompt when none is given.
SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
           "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
           "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
           "{{ '<|im_start|>assistant\\n' }}{% endif %}")
# Gemma 3's shape: no system role, the system prompt is folded into the first user turn; assistant is "model".
GEMMA = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\\n\\n' %}"
         "{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}{% endif %}"
         "{% for message in loop_messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
         "<start_of_turn>{{ role }}\n{{ (first if loop.first else '') + message['content'] }}<end_of_turn>\n{% endfor %}"
         "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
          "{{ message['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
          "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


@pytest.mark.parametrize("template, bos, eos", [(SMOLLM2, "<|im_start|>", "<|im_end|>"), (GEMMA, "<bos>", "<eos>"),
                                               (LLAMA3, "<|begin_of_text|>", "<|eot_id|>")])
def test_flattened_format_renders_exactly_like_the_template(template: str, bos: str, eos: str) -> None:
    fmt = flatten(_template(template, bos, eos))
    for messages in VECTOR_CONVERSATIONS.values():
        assert render_flat(fmt, messages) == _template(template, bos, eos).render(messages)


def test_default_system_prompt_and_folded_system_are_kept() -> None:
    smol = flatten(_template(SMOLLM2, "<|im_start|>", "<|im_end|>"))
    assert "named SmolLM" in smol["start"]["user"] and smol["stops"] == ["<|im_end|>"]
    gemma = flatten(_template(GEMMA, "<bos>", "<eos>"))
    assert gemma["system_as_user_prefix"] and gemma["stops"] == ["<end_of_turn>", "<eos>"]
    assert gemma["start"]["user"] == "<bos><start_of_turn>user\n"


def test_templates_that_are_not_concatenations_are_refused() -> None:
    numbered = "{% for m in messages %}[{{ loop.index }}] {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(SlmkitError, match="does not reproduce the original"):
        flatten(_template(numbered, "", ""))
    refuses_everything = "{{ raise_exception('no chat here') }}"
    with pytest.raises(SlmkitError, match="no chat here"):
        flatten(_template(refuses_everything, "", ""))


def test_a_template_refusing_the_system_role_folds_it_like_the_runtimes() -> None:
    strict = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}" + LLAMA3
    fmt = flatten(_template(strict, "<|begin_of_text|>", "<|eot_id|>"))
    assert fmt["system_as_user_prefix"] and "system" not in fmt["start"]
    messages = VECTOR_CONVERSATIONS["system then user"]
    assert render_flat(fmt, messages) == _template(strict, "<|begin_of_text|>", "<|eot_id|>").render_chat(messages)


# Llama 3.2's guarded date: transformers renders today's date; the flat format keeps a slot.
LLAMA32_DATE = ("{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}"
                "{%- set date_string = '26 Jul 2024' %}{%- endif %}{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\n"
                "Today Date: {{ date_string }}\n\n{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}"
                "{% set messages = messages[1:] %}{% endif %}<|eot_id|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
                "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
                "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


@pytest.mark.parametrize("source", [LLAMA32_DATE, LLAMA32_DATE.replace("strftime_now is defined", "true")])
def test_a_date_stays_a_slot_filled_when_rendered(source: str) -> None:
    template = _template(source, "<|begin_of_text|>", "<|eot_id|>")
    fmt = flatten(template)
    assert "\u27e6now:%d %b %Y\u27e7" in fmt["start"]["user"] and "26 Jul 2024" not in str(fmt)
    for day in (datetime(2026, 3, 7), datetime(2024, 2, 29, 23, 59)):
        for messages in VECTOR_CONVERSATIONS.values():
            assert render_flat(fmt, messages, day) == template.with_strftime(day.strftime).render_chat(messages)
    assert datetime.now().strftime("%d %b %Y") in render_flat(fmt, VECTOR_CONVERSATIONS["one user turn"])


def test_a_date_format_the_ports_cannot_fill_is_refused() -> None:
    with pytest.raises(SlmkitError, match="formats the date with %Z"):
        flatten(_template("{{ strftime_now('%H:%M %Z') }}" + LLAMA3, "", ""))


def test_golden_vectors_carry_the_clock_they_were_rendered_at(tmp_path) -> None:
    import json

    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": LLAMA32_DATE, "eos_token": "<|eot_id|>"}))
    write_chat_format(tmp_path, tmp_path / "chat_format.json", tmp_path / "vectors.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "vectors.jsonl").read_text().splitlines()]
    for row in rows:
        now = datetime(**row["now"])
        assert row["expected"] == render_flat(row["format"], row["messages"], now)
        assert now.strftime("%d %b %Y") in row["expected"]


def test_a_hostile_template_in_a_tokenizer_folder_fails_before_packaging(tmp_path) -> None:
    """A downloaded tokenizer_config.json whose template reaches for Python internals is refused by
    the sandbox with one error; nothing runs and nothing is written."""
    from slmkit.converter.package.chat_format import check_chat_format

    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": hostile}), encoding="utf-8")
    with pytest.raises(SlmkitError, match="unsafe"):
        check_chat_format(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer_config.json"]
