"""genai_config.json: makes the artifact folder loadable by onnxruntime-genai as it is.

onnxruntime-genai's users otherwise hand-write this file for models its builder does not know
(onnxruntime-genai #754). Values come from the exported graph and the checkpoint's configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.converter.models.decoder import DecoderSpec

GENAI_CONFIG = "genai_config.json"


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def special_tokens(ckpt: Checkpoint) -> dict[str, Any]:
    """bos/eos/pad as generation_config.json states them (chat models end turns with their own EOS)."""
    generation = {}
    if (ckpt.path / "generation_config.json").is_file():
        generation = json.loads((ckpt.path / "generation_config.json").read_text(encoding="utf-8"))
    text = ckpt.text_config

    def pick(key: str) -> Any:
        for source in (generation, text, ckpt.config):
            if source.get(key) is not None:
                return source[key]
        return None

    eos = _token_ids(pick("eos_token_id"))
    pad = pick("pad_token_id")
    bos = pick("bos_token_id")
    return {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad if pad is not None else (eos[0] if eos else 0)}


def genai_config(ckpt: Checkpoint, spec: DecoderSpec, model_file: str, genai_type: str) -> dict[str, Any]:
    """genai_config.json for the artifact: context length, the decoder's file, sizes and input/output
    names, special token ids and greedy search defaults, `genai_type` as onnxruntime-genai's model type.
    """
    tokens = special_tokens(ckpt)
    return {
        "model": {
            **tokens,
            "context_length": spec.context_length,
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": model_file,
                "head_size": spec.head_dim,
                "hidden_size": spec.hidden,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "position_ids": "position_ids",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": spec.heads,
                "num_hidden_layers": spec.layers,
                "num_key_value_heads": spec.kv_heads,
            },
            "type": genai_type,
            "vocab_size": spec.vocab_size,
        },
        "search": {
            "diversity_penalty": 0.0,
            "do_sample": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            "max_length": spec.context_length,
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            # Present tensors are past + new (the graph concatenates), not a shared fixed buffer.
            "past_present_share_buffer": False,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }


def write_genai_config(folder: Path, config: dict[str, Any]) -> None:
    """`config` as genai_config.json in `folder`."""
    (folder / GENAI_CONFIG).write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
