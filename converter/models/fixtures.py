"""Tiny random checkpoints with a trained tokenizer: the fast test fixtures for every architecture.

Each has the real layout of its family (GQA, tied or untied output, Q/K/V biases, Gemma's
sliding + full layers, Llama 3 RoPE scaling, a multimodal Gemma 3 wrapper) at a size that
converts in seconds. Weights are random but drawn by the real-shape checkpoints' rules
(converter/models/synth.py `distribution`): norm weights near 1 where the architecture multiplies
by them, logits peaked, every block writing O(1) into the stream, so argmax comparisons and KL
bounds see a broken rule as they would on a trained model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmkit.converter import pretokenizers
from slmkit.converter.architectures import architecture_for
from slmkit.converter.models.synth import distribution

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def add(a: int, b: int) -> int:\n    return a + b\n",
    "Invoice 2024-0193: 3 x $19.99 = $59.97, tax 8.25%, total $64.92 on 03/07/2024.",
    "Café, naïve, São Paulo, Kraków, Ελληνικά, русский, 日本語, 한국어, 🚀🙂, ∑ x² ≤ ∞.",
    "Hi! Can you tell me what a language model is? A language model predicts the next token.",
    "My card was charged twice for the same coffee. Please refund the second payment.",
    "The Rhine rises in the Swiss Alps and flows to the North Sea through Basel and Cologne.",
    "{\"user\": {\"id\": 4821, \"name\": \"Ana\", \"tags\": [\"beta\", \"ios\"]}}",
    "Line one\n\n    indented line\ttab\n\n\nthree newlines   and   spaces",
]

# fixture name -> (pre-tokenizer, transformers config class, config overrides)
FIXTURES: dict[str, tuple[str, str, dict]] = {
    "llama": ("smollm", "LlamaConfig", {"num_key_value_heads": 2, "tie_word_embeddings": True}),
    "llama3-rope": ("llama-bpe", "LlamaConfig", {
        "num_key_value_heads": 2, "tie_word_embeddings": True, "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 256}}),
    "gemma3": ("gpt-2", "Gemma3TextConfig", {
        "num_hidden_layers": 6, "num_key_value_heads": 1, "head_dim": 32, "sliding_window": 16,
        "query_pre_attn_scalar": 32, "tie_word_embeddings": True}),
    "qwen2": ("qwen2", "Qwen2Config", {"num_key_value_heads": 2, "tie_word_embeddings": False}),
    "phi4-mini": ("gpt-4o", "Phi3Config", {
        "num_key_value_heads": 2, "tie_word_embeddings": True, "max_position_embeddings": 4096,
        "original_max_position_embeddings": 256, "partial_rotary_factor": 0.75,
        "rope_parameters": {"rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                            "original_max_position_embeddings": 256,
                            "short_factor": [1.0 + 0.05 * i for i in range(6)],
                            "long_factor": [1.0 + 0.5 * i for i in range(6)]}}),
}
# multimodal fixture -> (text decoder fixture, overrides): Gemma 3 4B/12B scale full-attention RoPE linearly.
MULTIMODAL_FIXTURES = {
    "gemma3-multimodal": ("gemma3", {"rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}}}),
}
# SentencePiece fixture -> (text decoder fixture, Gemma's special ids): Gemma's real tokenizer files (tokenizer.model
# plus the tokenizer.json transformers 5 saves), with two tokens added after the SentencePiece model
# was trained, which only tokenizer.json records (the GGUF must still know them).
SENTENCEPIECE_FIXTURES = {"gemma3-spm": ("gemma3", {"bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0})}
ADDED_AFTER_TRAINING = ["<tool_result>", "<tool_call>"]
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ (first if loop.first else '') + message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
# The tokenizer class the real family declares (Phi-4's converters read it to pick the BPE path).
TOKENIZER_CLASS = {"phi4-mini": "GPT2Tokenizer"}
# Special tokens as the real family's tokenizer_config.json has them: Qwen 2.5 has no BOS token
# (`bos_token: null`) although its config.json declares a `bos_token_id`.
TOKENIZER_SPECIALS = {"qwen2": {"bos_token": None}}


def train_tokenizer(pre: str, vocab_size: int = 400):
    """A byte-level BPE trained on a small mixed corpus, with the named llama.cpp pre-tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer_json = json.loads(tokenizer.to_str())
    tokenizer_json["pre_tokenizer"] = pretokenizers.pre_tokenizer_json(pre)
    tokenizer = Tokenizer.from_str(json.dumps(tokenizer_json))
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tokenizer


def write_sentencepiece_tokenizer(out: Path) -> Any:
    """A SentencePiece BPE (Gemma's ids: pad 0, eos 1, bos 2, unk 3, turn markers as user-defined
    pieces) loaded by transformers, with ADDED_AFTER_TRAINING added; returns the HF tokenizer."""
    import io

    import sentencepiece as spm
    from transformers import AutoTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS * 4), model_writer=model, vocab_size=500, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>", user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        add_dummy_prefix=False, remove_extra_whitespaces=False, split_digits=True, minloglevel=2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
        "unk_token": "<unk>", "add_bos_token": True}), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.add_tokens(ADDED_AFTER_TRAINING)
    tokenizer.chat_template = GEMMA_TEMPLATE
    return tokenizer


def _tiny_text_config(kind: str, vocab_size: int, overrides: dict):
    import transformers

    config_class = getattr(transformers, FIXTURES[kind][1])
    base = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                num_attention_heads=4, max_position_embeddings=4096, initializer_range=0.25,
                bos_token_id=1, eos_token_id=2, pad_token_id=0, rms_norm_eps=1e-6)
    base.update(overrides)
    return config_class(**base)


def build_fixture(name: str, out: Path, seed: int = 0) -> Path:
    """Write a tiny random checkpoint (config, safetensors, tokenizer, chat template) to `out`."""
    import torch
    import transformers
    from transformers import PreTrainedTokenizerFast

    kind, extra = {**MULTIMODAL_FIXTURES, **SENTENCEPIECE_FIXTURES}.get(name, (name, {}))
    pre, _, overrides = FIXTURES[kind]
    overrides = {**overrides, **extra}
    if name in SENTENCEPIECE_FIXTURES:
        wrapper = write_sentencepiece_tokenizer(out)
        vocab_size = len(wrapper)
    else:
        tokenizer = train_tokenizer(pre)
        wrapper = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token=None, pad_token="<|endoftext|>",
                                          **{"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                             **TOKENIZER_SPECIALS.get(kind, {})})
        wrapper.chat_template = CHATML
        vocab_size = tokenizer.get_vocab_size()
    torch.manual_seed(seed)
    text_config = _tiny_text_config(kind, vocab_size, overrides)
    if name in MULTIMODAL_FIXTURES:
        vision = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                 num_attention_heads=2, image_size=28, patch_size=14)
        config = transformers.Gemma3Config(text_config=text_config.to_dict(), vision_config=vision.to_dict(),
                                           mm_tokens_per_image=4, image_token_index=3, boi_token_index=4,
                                           eoi_token_index=5, initializer_range=0.25)
        model = transformers.Gemma3ForConditionalGeneration(config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(text_config)
    arch = architecture_for(text_config.model_type)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            # The real-shape checkpoints' rules (synth.py): peaked logits, blocks that matter.
            mean, std = distribution(param_name, tuple(param.shape), arch, text_config.hidden_size)
            param.normal_(mean, std)
    model.save_pretrained(out, safe_serialization=True)
    wrapper.save_pretrained(out)
    if kind in TOKENIZER_CLASS:
        config_path = out / "tokenizer_config.json"
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        tokenizer_config["tokenizer_class"] = TOKENIZER_CLASS[kind]
        config_path.write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    return out
