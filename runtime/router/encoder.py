"""A sentence encoder run by ONNX Runtime: the classifier's meaning features (no torch).

The folder holds `encoder.json` (what the model is, its licence, checksums), an int8 ONNX model
that maps token ids to one L2-normalized mean-pooled vector, and its `tokenizers` tokenizer.
It adds ~0.1 accuracy on request phrasings the router never saw (docs/routing.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.engines.onnxruntime import load_session
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.validation import RelativePath, inside, read_json, validated

FORMAT = "slmkit-sentence-encoder"


class EncoderConfig(BaseModel):
    """encoder.json (converter/routing/encoder_export.py writes it): what the model is, where its files are."""

    model_config = ConfigDict(extra="allow")   # name, recipe, source, licence, pooling: descriptive

    format: Literal["slmkit-sentence-encoder"]
    version: Literal[1] = 1
    model: RelativePath
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tokenizer: RelativePath
    max_tokens: StrictInt = Field(ge=1, le=8192)
    dim: StrictInt = Field(ge=1, le=65536)


class SentenceEncoder:
    def __init__(self, folder: Path, threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        description = folder / "encoder.json"
        if not description.is_file():
            raise SlmkitError(f"{folder} is not a sentence encoder folder (no encoder.json).",
                              hint="Build one with `slmkit router train --encoder minilm-l3`.")
        data = read_json(description, "a sentence encoder description (encoder.json)",
                         hint="Build one with `slmkit router train --encoder minilm-l3`.")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SlmkitError(f"{description} is not a {FORMAT} description.")
        self.config = validated(EncoderConfig, data, description).model_dump()
        model = inside(folder, self.config["model"], description)
        if not model.is_file() or sha256_file(model) != self.config["model_sha256"]:
            raise SlmkitError(f"{model} is missing or does not match the sha256 in encoder.json.")
        self.dim = self.config["dim"]
        tokenizer = inside(folder, self.config["tokenizer"], description)
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # tokenizers raises its own Exception subclass for any unreadable file
            raise SlmkitError(f"{tokenizer} is not a tokenizers tokenizer.json ({exc}).") from None
        self.tokenizer.enable_truncation(self.config["max_tokens"])
        self.tokenizer.no_padding()
        self.session = load_session(model, threads or 1)

    def encode(self, text: str) -> np.ndarray:
        """One unit-length vector of `dim` floats."""
        encoding = self.tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        mask = np.asarray([encoding.attention_mask], dtype=np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0][0].astype(np.float64)

