"""Facts about a checkpoint's tokenizer that runtimes other than transformers need stated explicitly.

transformers decides some behaviour from code defaults per tokenizer class (Gemma adds BOS with no
`add_bos_token` key) and keeps the chat template in `chat_template.jinja`; llama.cpp and
onnxruntime-extensions read only what the files say, so slmkit writes it down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError


# A checkpoint's tokenizer files (whichever it has).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "chat_template.json", "added_tokens.json")
# Copied beside them into an artifact: generation defaults, and config.json, from which tokenizer
# loaders pick the tokenizer class (transformers 5 without it builds Phi-4's `GPT2Tokenizer` with
# GPT-2's own pre-tokenizer instead of tokenizer.json's: other ids; swift-transformers reads it too).
ARTIFACT_TOKENIZER_FILES = (*TOKENIZER_FILES, "generation_config.json", "config.json")


# JSON files a tokenizer folder may hold, each a JSON object when present (transformers indexes them
# as dicts and fails with KeyError/AttributeError deep inside when one is something else).
JSON_OBJECT_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                     "added_tokens.json", "chat_template.json")


def check_tokenizer_files(folder: Path) -> None:
    """Refuse tokenizer files that are not what their names claim, before transformers reads them:
    each JSON file of JSON_OBJECT_FILES a JSON object, tokenizer.json a `tokenizers` tokenizer,
    tokenizer.model a SentencePiece model. Raises SlmkitError naming the file."""
    from slmkit.runtime.validation import read_json

    for name in JSON_OBJECT_FILES:
        if (folder / name).is_file() and not isinstance(read_json(folder / name, f"a {name}"), dict):
            raise SlmkitError(f"{folder / name} is not a JSON object, as a {name} must be.")
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises its own Exception type for any malformed file
            raise SlmkitError(f"{folder / 'tokenizer.json'} is not a tokenizers tokenizer.json ({exc}).") from None
    if (folder / "tokenizer.model").is_file():
        import sentencepiece

        try:
            sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        except Exception as exc:  # sentencepiece raises RuntimeError/OSError from C++
            raise SlmkitError(f"{folder / 'tokenizer.model'} is not a SentencePiece model ({exc}).") from None


def load_tokenizer(folder: Path) -> Any:
    """transformers' AutoTokenizer over `folder`'s own files (no download, no remote code), after
    `check_tokenizer_files`. Raises SlmkitError when they are missing, malformed or unreadable.
    """
    from transformers import AutoTokenizer

    check_tokenizer_files(folder)
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:  # transformers raises arbitrary types for broken files from elsewhere
        raise SlmkitError(f"{folder} has no usable tokenizer files: {type(exc).__name__}: {exc}") from None


def observed_special_tokens(directory: Path) -> dict[str, bool]:
    """Whether the Hugging Face tokenizer really adds BOS / EOS when encoding text."""
    tokenizer = load_tokenizer(directory)
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return {
        "bos": bos is not None and len(ids) > len(plain) and ids[0] == bos,
        "eos": eos is not None and len(ids) > len(plain) and ids[-1] == eos,
    }



# from_pretrained keyword arguments that transformers' save_pretrained writes back into tokenizer_config.json: how
# that one process loaded the files (offline or not, which cache), not what the tokenizer is. Left in, the same
# model's artifact differs from machine to machine.
LOADING_KWARGS = ("local_files_only", "is_local", "cache_dir", "token", "use_auth_token", "force_download", "proxies",
                  "_commit_hash")


def drop_loading_kwargs(folder: Path) -> None:
    """Remove LOADING_KWARGS from `folder/tokenizer_config.json`, if the file exists."""
    path = folder / "tokenizer_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if any(key in config for key in LOADING_KWARGS):
            kept = {key: value for key, value in config.items() if key not in LOADING_KWARGS}
            path.write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def state_tokenizer_config(folder: Path, observed: dict[str, bool]) -> None:
    """Make `folder/tokenizer_config.json` say what the HF tokenizer does: BOS/EOS and the chat template, and
    nothing of how it was loaded (LOADING_KWARGS)."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config = {key: value for key, value in config.items() if key not in LOADING_KWARGS}
    config["add_bos_token"], config["add_eos_token"] = observed["bos"], observed["eos"]
    template = folder / "chat_template.jinja"
    if "chat_template" not in config and template.is_file():
        config["chat_template"] = template.read_text(encoding="utf-8")
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# Conversations every chat template must render before slmkit converts or packages a model.
TEMPLATE_PROBES = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "Capital of France?"}],
]


def check_chat_template(folder: Path) -> None:
    """Compile the checkpoint's chat template in transformers' environment and render plain
    conversations through it (a system prompt folded where the template refuses one), so a template
    no runtime could use fails in one line before any conversion work. No template: nothing to check."""
    from slmkit.runtime.chat_template import load_chat_template

    template = load_chat_template(folder)
    if template is None:
        return
    for probe in TEMPLATE_PROBES:
        template.render_chat(probe)

