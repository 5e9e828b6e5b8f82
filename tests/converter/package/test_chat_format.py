"""Chat templates flattened for the phones: exact for concatenating templates, refused otherwise."""

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.package.chat_format import VECTOR_CONVERSATIONS, _renderer, flatten, render_flat

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
    fmt = flatten(template, bos, eos)
    render = _renderer(template, bos, eos)
    for messages in VECTOR_CONVERSATIONS.values():
        assert render_flat(fmt, messages) == render(messages, True)


def test_default_system_prompt_and_folded_system_are_kept() -> None:
    smol = flatten(SMOLLM2, "<|im_start|>", "<|im_end|>")
    assert "named SmolLM" in smol["start"]["user"] and smol["stops"] == ["<|im_end|>"]
    gemma = flatten(GEMMA, "<bos>", "<eos>")
    assert gemma["system_as_user_prefix"] and gemma["stops"] == ["<end_of_turn>", "<eos>"]
    assert gemma["start"]["user"] == "<bos><start_of_turn>user\n"


def test_templates_that_are_not_concatenations_are_refused() -> None:
    numbered = "{% for m in messages %}[{{ loop.index }}] {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(SlmkitError, match="does not reproduce the original"):
        flatten(numbered, "", "")
    strict = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}" + LLAMA3
    with pytest.raises(SlmkitError, match="no system role"):
        flatten(strict, "", "")
