"""Tokenizer metadata for GGUF: tokens, scores, types, merges, special ids, chat template.

llama.cpp tokenizes from this metadata alone, so it must reproduce the Hugging Face tokenizer
token for token. SentencePiece models (tokenizer.model) become llama.cpp's `llama` vocabulary;
byte-level BPE (tokenizer.json) becomes `gpt2` with an explicit, known pre-tokenizer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from slmkit.converter import pretokenizers
from slmkit.converter.errors import SlmkitError
from slmkit.converter.tokenizer_files import observed_special_tokens

_SPIECE_SPACE = "\u2581"
_LOOKS_SPECIAL_EXACT = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"}


def looks_special(token: str) -> bool:
    """Added tokens that some checkpoints forget to flag as special but that are control tokens."""
    return (
        token in _LOOKS_SPECIAL_EXACT
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


@dataclass
class Vocab:
    model: str  # llama.cpp tokenizer model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    pre: str
    tokens: list[str | bytes]
    token_types: list[int]
    scores: list[float] | None
    load_merges: bool
    add_space_prefix: bool | None = None  # SentencePiece's add_dummy_prefix, stated explicitly

    def add_to(self, writer: gguf.GGUFWriter, checkpoint_dir: Path) -> None:
        """The tokenizer into `writer`: model, pre-tokenizer, tokens, scores, types, space prefix, then
        gguf-py's SpecialVocab (special ids, merges, chat template) with add_bos/add_eos as transformers
        behaves on the checkpoint (`observed_special_tokens`).
        """
        writer.add_tokenizer_model(self.model)
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.token_types)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        # gguf-py warns about pair templates (sentence pairs), which llama.cpp never uses.
        logging.getLogger("gguf.vocab").setLevel(logging.ERROR)
        special = gguf.SpecialVocab(checkpoint_dir, load_merges=self.load_merges, n_vocab=len(self.tokens))
        # llama.cpp's default for a missing add_bos differs per pre-tokenizer; state what HF does.
        special.add_special_token.update(observed_special_tokens(checkpoint_dir))
        special.add_to_gguf(writer, quiet=True)


def _tokenizer_config(directory: Path) -> dict[str, Any]:
    path = directory / "tokenizer_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def hf_added_tokens(directory: Path) -> dict[int, Any]:
    """id -> AddedToken (content, special) of the tokenizer as transformers loads it."""
    from slmkit.converter.tokenizer_files import load_tokenizer

    return dict(load_tokenizer(directory).added_tokens_decoder)


def sentencepiece_vocab(directory: Path, vocab_size: int | None) -> Vocab:
    """Pieces, scores and types straight from the SentencePiece model proto.

    Reading the proto (not SentencePieceProcessor) keeps USER_DEFINED pieces, such as Gemma's
    whitespace runs, which llama.cpp must match literally to tokenize like Hugging Face.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    proto = sp_pb2.ModelProto()
    try:
        proto.ParseFromString((directory / "tokenizer.model").read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise SlmkitError(f"Cannot read {directory / 'tokenizer.model'}: {exc}") from None
    size = vocab_size or len(proto.pieces)
    tokens: list[str | bytes] = [f"[PAD{i}]".encode() for i in range(size)]
    scores = [-10000.0] * size
    types = [int(gguf.TokenType.UNUSED)] * size
    for token_id, piece in enumerate(proto.pieces[:size]):
        tokens[token_id] = piece.piece.encode("utf-8")
        scores[token_id] = piece.score
        types[token_id] = int(piece.type)  # SentencePiece and GGUF number token types alike

    # Added tokens from wherever transformers finds them (added_tokens.json, tokenizer_config.json's
    # added_tokens_decoder, tokenizer.json's added_tokens: transformers 5 records tokens added after
    # the SentencePiece model was trained only there), so llama.cpp splits them out as HF does.
    for token_id, added in hf_added_tokens(directory).items():
        if token_id >= size:
            continue
        text = added.content
        if added.special or looks_special(text):
            types[token_id] = gguf.TokenType.CONTROL
        else:
            text = text.replace(_SPIECE_SPACE, " ")
            types[token_id] = gguf.TokenType.USER_DEFINED
        tokens[token_id], scores[token_id] = text.encode("utf-8"), -1000.0
    return Vocab("llama", "default", tokens, [int(t) for t in types], scores, load_merges=False,
                 add_space_prefix=proto.normalizer_spec.add_dummy_prefix)


def bpe_vocab(directory: Path, vocab_size: int | None) -> Vocab:
    """The GGUF vocabulary of a BPE tokenizer.json (tokenizer.ggml.model "gpt2"), padded to
    `vocab_size` with unused tokens, its pre-tokenizer identified by converter/pretokenizers.py.
    Raises SlmkitError when the file is unreadable, not BPE, holds ids past `vocab_size`, or has a
    pre-tokenizer llama.cpp does not know (converter/pretokenizers.py names the known ones).
    """
    from tokenizers import Tokenizer

    path = directory / "tokenizer.json"
    try:
        tokenizer_json = json.loads(path.read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(path))
    except (OSError, ValueError, Exception) as exc:  # tokenizers raises plain Exception
        raise SlmkitError(f"Cannot read {path}: {exc}") from None
    if tokenizer_json.get("model", {}).get("type") != "BPE":
        raise SlmkitError(f"{path} holds a {tokenizer_json.get('model', {}).get('type')} model; GGUF export supports BPE and SentencePiece.")
    pre = pretokenizers.identify(tokenizer_json)
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    size = vocab_size or len(vocab)
    if max(vocab.values()) >= size:
        raise SlmkitError(f"The tokenizer has ids up to {max(vocab.values())} but the model's vocab_size is {size}.")
    by_id = {token_id: text for text, token_id in vocab.items()}
    added = {entry["id"]: entry for entry in tokenizer_json.get("added_tokens", [])}
    tokens: list[str | bytes] = []
    types: list[int] = []
    for token_id in range(size):
        if token_id not in by_id:
            tokens.append(f"[PAD{token_id}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        text = by_id[token_id]
        entry = added.get(token_id)
        if entry is None:
            types.append(gguf.TokenType.NORMAL)
        else:
            if not entry.get("normalized", False):
                # llama.cpp expects control and user tokens pre-normalized.
                text = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False).ids, skip_special_tokens=False)
            if entry.get("special") or looks_special(text):
                types.append(gguf.TokenType.CONTROL)
            else:
                text = text.replace(_SPIECE_SPACE, " ")
                types.append(gguf.TokenType.USER_DEFINED)
        tokens.append(text)
    return Vocab("gpt2", pre, tokens, [int(t) for t in types], None, load_merges=True)


def read_vocab(directory: Path, vocab_size: int | None) -> Vocab:
    """The checkpoint's vocabulary for the GGUF: SentencePiece when tokenizer.model exists, else BPE
    from tokenizer.json. Raises SlmkitError when the folder has neither.
    """
    if (directory / "tokenizer.model").is_file():
        return sentencepiece_vocab(directory, vocab_size)
    if (directory / "tokenizer.json").is_file():
        return bpe_vocab(directory, vocab_size)
    raise SlmkitError(
        f"{directory} has no tokenizer (tokenizer.model or tokenizer.json).",
        hint="A GGUF must carry its tokenizer; add the tokenizer files to the checkpoint folder.",
    )
