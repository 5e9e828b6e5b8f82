"""A Hugging Face checkpoint on disk, seen as the text decoder that ships.

Tensors are streamed one at a time from the safetensors files, so converting a model needs
memory for its largest tensor, not for the whole model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from slmkit.converter.architectures import MULTIMODAL, Architecture, architecture_for
from slmkit.converter.errors import SlmkitError
from slmkit.converter.tokenizer_files import check_tokenizer_files
from slmkit.runtime.validation import RelativePath, inside, read_json, validated

if TYPE_CHECKING:
    import torch

    from slmkit.runtime.models.recipe import Recipe


# safetensors dtype -> bytes per element.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class TensorRef:
    """A tensor in a safetensors file: shape and dtype known before any data is read."""

    name: str  # name as a text-only checkpoint would spell it
    source_name: str
    file: Path
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype string: F32, F16, BF16 ...

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES.get(self.dtype, 4)

    def load(self) -> torch.Tensor:
        """The tensor in its stored dtype (a torch tensor, one read from its safetensors file). Raises
        SlmkitError when the file cannot give it (corrupt or truncated).
        """
        from safetensors import safe_open

        try:
            with safe_open(self.file, framework="pt") as handle:
                return handle.get_tensor(self.source_name)
        except Exception as exc:  # safetensors raises its own error types
            raise SlmkitError(
                f"Cannot read tensor '{self.source_name}' from {self.file}: {exc}",
                hint="The file is corrupt or truncated; download it again.",
            ) from None


# Weight files that are Python pickles (torch.save): never loaded, since unpickling runs code.
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


class SafetensorsIndex(BaseModel):
    """model.safetensors.index.json: which file holds each tensor (files inside the checkpoint)."""

    model_config = ConfigDict(extra="allow")   # metadata

    weight_map: dict[str, RelativePath] = Field(min_length=1)


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    source: dict[str, Any]
    recipe: Recipe | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, source: dict[str, Any], recipe: Recipe | None = None) -> Checkpoint:
        """The checkpoint in `path` (config.json read, architecture checked; weights not read yet);
        `source` records where it came from for the manifest. Raises SlmkitError without a config.json,
        for a config.json that is not valid JSON, or for a missing or unsupported `model_type`.
        """
        config_file = path / "config.json"
        if not config_file.is_file():
            raise SlmkitError(
                f"{path} is not a Hugging Face checkpoint: it has no config.json.",
                hint="Pass a folder holding config.json, *.safetensors and the tokenizer files.",
            )
        config = load_config(path)
        ckpt = cls(path=path, config=config, source=source, recipe=recipe)
        architecture_for(ckpt.model_type)  # fail early, listing what is supported
        ckpt.safetensors_files()           # a pickle-only checkpoint is refused before any work
        check_tokenizer_files(path)
        if config.get("auto_map"):
            ckpt.notes.append("config.json names its own Python code (auto_map); slmkit never runs a checkpoint's code "
                              f"(trust_remote_code stays off) and converts it as transformers' {ckpt.model_type}.")
        if ckpt.is_multimodal:
            ckpt.notes.append(
                f"{config.get('architectures', ['multimodal'])[0]} checkpoint: only its text decoder "
                f"({ckpt.model_type}) is converted; the vision tower and projector are left out."
            )
        return ckpt

    @property
    def is_multimodal(self) -> bool:
        return self.config.get("model_type") in MULTIMODAL

    @property
    def text_config(self) -> dict[str, Any]:
        """The decoder's hyper-parameters (`text_config` for multimodal checkpoints)."""
        layout = MULTIMODAL.get(self.config.get("model_type", ""))
        if layout is None:
            return self.config
        text = dict(self.config.get(layout.text_config_key) or {})
        text.setdefault("tie_word_embeddings", self.config.get("tie_word_embeddings", True))
        return text

    @property
    def model_type(self) -> str:
        """The text decoder's `model_type`. Raises SlmkitError when config.json has none."""
        model_type = self.text_config.get("model_type")
        if not model_type:
            raise SlmkitError(f"{self.path / 'config.json'} has no model_type.")
        return model_type

    @property
    def architecture(self) -> Architecture:
        return architecture_for(self.model_type)

    def hparam(self, key: str) -> Any:
        """A decoder hyper-parameter, with the architecture's documented default."""
        text = self.text_config
        if key in text and text[key] is not None:
            return text[key]
        return self.architecture.defaults.get(key)

    def safetensors_files(self) -> list[Path]:
        """The weight files: those model.safetensors.index.json lists, else every *.safetensors. Raises
        SlmkitError when there are none (pickle .bin checkpoints are not read) or listed ones are missing.
        """
        index = self.path / "model.safetensors.index.json"
        if index.is_file():
            weight_map = validated(SafetensorsIndex, read_json(index, "a safetensors index (JSON)"), index).weight_map
            files = sorted({inside(self.path, name, index) for name in weight_map.values()})
        else:
            files = sorted(self.path.glob("*.safetensors"))
        if not files:
            pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in self.path.glob(pattern))
            raise SlmkitError(
                f"{self.path} has no *.safetensors weights"
                + (f"; {', '.join(pickles[:3])} {'is a pickle' if len(pickles) == 1 else 'are pickles'}, which slmkit "
                   f"never loads (unpickling can run any code)." if pickles else "."),
                hint="If you trust where it came from, convert it yourself with transformers and pass the result: "
                     "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT) writes safetensors; "
                     "AutoTokenizer.from_pretrained(DIR).save_pretrained(OUT) adds the tokenizer beside them.",
            )
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise SlmkitError(f"Weight files listed in the index are missing: {', '.join(map(str, missing))}")
        return files

    def tensors(self) -> list[TensorRef]:
        """Every decoder tensor, named as in a text-only checkpoint, without reading data."""
        refs: list[TensorRef] = []
        rename = self._renamer()
        for file in self.safetensors_files():
            header = read_safetensors_header(file)
            for source_name, info in header.items():
                if source_name == "__metadata__":
                    continue
                name = rename(source_name)
                if name is None:
                    continue
                refs.append(TensorRef(name, source_name, file, tuple(info["shape"]), info["dtype"]))
        return refs

    def _renamer(self) -> Callable[[str], str | None]:
        layout = MULTIMODAL.get(self.config.get("model_type", ""))
        if layout is None:
            return lambda name: name
        prefixes = layout.rename_prefixes

        def rename(name: str) -> str | None:
            for old, new in prefixes:
                if name.startswith(old):
                    return new + name[len(old):]
            return None  # vision tower, projector

        return rename


def load_config(path: Path) -> dict[str, Any]:
    """config.json with transformers' defaults filled in (what the model actually runs with; never
    the checkpoint's own code). Raises SlmkitError when it is not a JSON object."""
    config_file = path / "config.json"
    raw = read_json(config_file, "a model config (JSON)")
    if not isinstance(raw, dict):
        raise SlmkitError(f"{config_file} is not a JSON object, as a config.json must be.")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False).to_dict()
    except Exception:  # noqa: BLE001 - any architecture or field transformers cannot read: architecture_for() explains
        return raw


def read_safetensors_header(file: Path) -> dict[str, Any]:
    """Parse and check a safetensors header: a truncated or corrupt file fails here, by name."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            raw_len = handle.read(8)
            if len(raw_len) < 8:
                raise ValueError("file shorter than its 8-byte header length")
            header_len = int.from_bytes(raw_len, "little")
            if header_len <= 0 or header_len > size - 8:
                raise ValueError(f"header length {header_len} does not fit in a {size}-byte file")
            header = json.loads(handle.read(header_len))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SlmkitError(
            f"{file} is not a valid safetensors file ({exc}).",
            hint="The file is corrupt or truncated; download it again.",
        ) from None
    data_len = size - 8 - header_len
    end = max((info["data_offsets"][1] for k, info in header.items() if k != "__metadata__"), default=0)
    if end > data_len:
        raise SlmkitError(
            f"{file} is truncated: its header describes {end} bytes of tensor data, the file holds {data_len}.",
            hint="Download the file again.",
        )
    return header
