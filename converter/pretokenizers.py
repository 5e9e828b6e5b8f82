"""Known BPE pre-tokenizers: the Hugging Face `pre_tokenizer` shape <-> llama.cpp's name for it.

llama.cpp picks its pre-tokenization regex from `tokenizer.ggml.pre`. An unknown name is a hard
error there and a missing one silently tokenizes differently (SmolLM2: " $19" -> [216, 20]
instead of [1885]). We identify the pre-tokenizer from the structure of tokenizer.json, so a
new vocabulary with a known pre-tokenizer needs no hash table entry, and an unknown structure is
refused up front. The same table rebuilds tokenizer.json for GGUF-sourced checkpoints.
"""

from __future__ import annotations

from typing import Any

from slmkit.converter.errors import SlmkitError

_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_GPT4O_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_level(use_regex: bool) -> dict[str, Any]:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def _split(pattern: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


# llama.cpp pre-tokenizer name -> Hugging Face tokenizers `pre_tokenizer` JSON.
KNOWN_PRETOKENIZERS: dict[str, dict[str, Any]] = {
    "gpt-2": _byte_level(True),
    "smollm": {
        "type": "Sequence",
        "pretokenizers": [{"type": "Digits", "individual_digits": True}, _byte_level(True)],
    },
    "llama-bpe": {"type": "Sequence", "pretokenizers": [_split(_LLAMA3_REGEX), _byte_level(False)]},
    "qwen2": {"type": "Sequence", "pretokenizers": [_split(_QWEN2_REGEX), _byte_level(False)]},
    "gpt-4o": {"type": "Sequence", "pretokenizers": [_split(_GPT4O_REGEX), _byte_level(False)]},  # Phi-4
}


def _signature(pre: dict[str, Any] | None) -> tuple:
    """What decides how text is split, ignoring options that do not change the split."""
    if pre is None:
        return ()
    kind = pre.get("type")
    if kind == "Sequence":
        return tuple(part for sub in pre.get("pretokenizers", []) for part in _signature(sub))
    if kind == "ByteLevel":
        return (("ByteLevel", bool(pre.get("add_prefix_space")), bool(pre.get("use_regex", True))),)
    if kind == "Digits":
        return (("Digits", bool(pre.get("individual_digits"))),)
    if kind == "Split":
        pattern = pre.get("pattern", {})
        return (("Split", pattern.get("Regex", pattern.get("String")), pre.get("behavior"), bool(pre.get("invert"))),)
    return ((kind, repr(sorted(pre.items()))),)


def identify(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for this tokenizer.json's pre-tokenizer, or a clear error."""
    wanted = _signature(tokenizer_json.get("pre_tokenizer"))
    for name, pre in KNOWN_PRETOKENIZERS.items():
        if _signature(pre) == wanted:
            return name
    raise SlmkitError(
        "This tokenizer's BPE pre-tokenizer is not one llama.cpp is known to implement "
        f"(structure: {wanted!r}).",
        hint=f"Known: {', '.join(KNOWN_PRETOKENIZERS)}. Writing the GGUF anyway would tokenize differently "
        "at run time, so slmkit stops here.",
    )


def pre_tokenizer_json(name: str) -> dict[str, Any]:
    """The tokenizers pre-tokenizer JSON equivalent to llama.cpp's pre-tokenizer `name`. Raises
    SlmkitError listing the known names.
    """
    try:
        return KNOWN_PRETOKENIZERS[name]
    except KeyError:
        raise SlmkitError(f"Unknown llama.cpp pre-tokenizer '{name}'.", hint=f"Known: {', '.join(KNOWN_PRETOKENIZERS)}.") from None
