"""The tokenizer half of a Runner, via transformers' AutoTokenizer on the artifact's own files.

Runners for engines without a tokenizer of their own (PyTorch, a plain ONNX Runtime session, the
Core ML program) tokenize this way, so their parity checks the model, not a second tokenizer.
"""

from __future__ import annotations

from typing import Any

from slmkit.converter.errors import SlmkitError
from slmkit.runtime.chat_template import fold_system
from slmkit.runtime.engines.base import TokenizerInfo


class HfTokenized:
    tokenizer: Any

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def added_tokens(self) -> list[str]:
        """Every added and special token's text, in id order."""
        return [token.content for _, token in sorted(self.tokenizer.added_tokens_decoder.items())]

    def tokenizer_info(self) -> TokenizerInfo:
        """transformers' BOS/EOS ids, whether encoding adds BOS, and the tokenizer's chat template."""
        tok = self.tokenizer
        probe = tok("a", add_special_tokens=True)["input_ids"]
        adds_bos = tok.bos_token_id is not None and len(probe) > 0 and probe[0] == tok.bos_token_id
        template = tok.chat_template if isinstance(tok.chat_template, str) else None
        return TokenizerInfo(tok.bos_token_id, tok.eos_token_id, adds_bos, template)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """transformers' own rendering; a system prompt the template refuses is folded into the first
        user turn (`fold_system`), as every slmkit runtime sends it."""
        from jinja2.exceptions import TemplateError

        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError as exc:
            if not messages or messages[0]["role"] != "system":
                raise SlmkitError(f"The chat template refused a conversation: {exc}") from None
        try:
            return self.tokenizer.apply_chat_template(fold_system(messages), tokenize=False, add_generation_prompt=True)
        except TemplateError as exc:
            raise SlmkitError(f"The chat template refused a conversation: {exc}") from None
