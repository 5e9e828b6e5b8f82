"""Real-shape checkpoints without the hub: random bf16 weights at a recipe's exact configuration.

`slmkit models synth NAME` writes what `hf download` would give for that recipe, with random
weights: the recipe's `config.json` (kept in `recipes/configs/`), sharded bf16 safetensors with an
index, and the tokenizer of the embedded model of the same family. Memory and time of conversion
and parity can then be measured at the sizes users convert (1-14B) on a machine without the hub.

Multimodal Gemma 3 (4B/12B) is written as `Gemma3ForConditionalGeneration` in the layout the hub
files use (`language_model.model.*`, `vision_tower.vision_model.*`, `multi_modal_projector.*`),
SigLIP tower included, so converters must skip the tower without loading it.

Weights are drawn so outputs are peaked, as a trained model's are; otherwise parity on them
would mean nothing (every rule below is a scale, not a value):
- projections: N(0, 1/fan_in);
- norm weights: N(1, 0.1) where the architecture multiplies by w, N(0, 0.1) where it stores w - 1
  (Gemma: `norm_shift`);
- each block writes BLOCK_OUTPUT_GAIN x more into the residual stream (Gemma: its sandwich output
  norms' gain; others: o_proj and down_proj): the blocks then dominate the stream as in trained
  models. Where the token embedding dominated instead, a tied output projection just predicted the
  input token (measured: Gemma 3 1B shapes 100 % of positions; the 4-layer Llama fixture 95 %);
- token table and output projection: N(0, LOGIT_STD^2 / hidden), so the logits of a normalized
  hidden state have standard deviation LOGIT_STD (top-1 probability ~0.6-0.9 over 50K-262K tokens);
- biases: N(0, 0.1).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from slmkit.converter.architectures import MULTIMODAL, Architecture, architecture_for
from slmkit.converter.errors import SlmkitError
from slmkit.converter.staging import GB, require_free_space, staged_output
from slmkit.converter.tokenizer_files import TOKENIZER_FILES
from slmkit.runtime.models.recipe import Recipe, all_recipes

LOGIT_STD = 8.0
NORM_STD = 0.1
BLOCK_OUTPUT_GAIN = 16.0
BIAS_STD = 0.1
GENERATION_ROWS = 8192
DEFAULT_SHARD_BYTES = 2 * GB  # shard size bounds synth's own memory; converters stream per tensor anyway
# Decoder model_type -> the embedded recipe whose tokenizer a synthesized checkpoint borrows. Only
# Gemma has an embedded model of its own family; the other families get SmolLM2's byte-level BPE
# (their configs' vocabularies are larger: the extra rows are padding to the tokenizer).
TOKENIZER_DONOR = {"gemma3_text": "gemma-3-270m", "llama": "smollm2-135m", "qwen2": "smollm2-135m",
                   "phi3": "smollm2-135m"}
# transformers-5 parameter prefixes -> the layout published on the hub (google/gemma-3-4b-it's
# model.safetensors.index.json): what users' Hugging Face caches hold.
HUB_LAYOUT = {
    "gemma3": (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower.vision_model."),
               ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head.")),
}


@dataclass(frozen=True)
class PlannedTensor:
    name: str  # as written to the file
    shape: tuple[int, ...]
    std: float
    mean: float = 0.0

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 2  # bf16


def recipe_config(recipe: Recipe) -> dict[str, Any]:
    """The recipe's Hugging Face config.json, as shipped in recipes/configs/."""
    entry = resources.files("slmkit.recipes").joinpath("configs", f"{recipe.name}.json")
    if not entry.is_file():
        raise SlmkitError(f"Recipe '{recipe.name}' has no config.json in recipes/configs/.",
                          hint="Add the model's Hugging Face config.json there to synthesize it.")
    return json.loads(entry.read_text(encoding="utf-8"))


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The text decoder's config: `config` itself, or its text_config for a multimodal checkpoint."""
    layout = MULTIMODAL.get(config.get("model_type", ""))
    return config[layout.text_config_key] if layout else config


def plan(config: dict[str, Any]) -> list[PlannedTensor]:
    """Every tensor of the checkpoint with its shape and distribution, from a meta-device model."""
    import torch
    import transformers

    text = text_config(config)
    arch = architecture_for(text["model_type"])
    hf_config = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = getattr(transformers, config["architectures"][0])(hf_config)
    hidden = int(text["hidden_size"])
    tied = bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", True)))
    rename = _hub_renamer(config.get("model_type", ""))
    planned = []
    for name, tensor in model.state_dict().items():
        if tied and name.endswith("lm_head.weight"):
            continue  # stored once, as the token table
        shape = tuple(tensor.shape)
        mean, std = distribution(name, shape, arch, hidden)
        planned.append(PlannedTensor(rename(name), shape, std, mean))
    return planned


def distribution(name: str, shape: tuple[int, ...], arch: Architecture, hidden: int) -> tuple[float, float]:
    """(mean, std) of a parameter's normal distribution, by its role (the rules above); shared by
    the tiny test fixtures (converter/models/fixtures.py), so they are peaked for the same reasons."""
    module = name.rsplit(".", 2)[-2] if "." in name else name
    if name.endswith(("embed_tokens.weight", "lm_head.weight")):
        return 0.0, LOGIT_STD / math.sqrt(hidden)
    output_norms = {m for role, m in arch.layer_norms.items() if role.endswith("_out_norm")}
    if len(shape) >= 2:
        gain = BLOCK_OUTPUT_GAIN if module in ("o_proj", "down_proj") and not output_norms else 1.0
        return 0.0, gain / math.sqrt(math.prod(shape[1:]))
    if "norm" in module and name.endswith(".weight"):
        gain = BLOCK_OUTPUT_GAIN if module in output_norms else 1.0
        return gain - arch.norm_shift, NORM_STD * gain
    return 0.0, BIAS_STD


def _hub_renamer(model_type: str) -> Callable[[str], str]:
    prefixes = HUB_LAYOUT.get(model_type, ())

    def rename(name: str) -> str:
        for old, new in prefixes:
            if name.startswith(old):
                return new + name[len(old):]
        return name

    return rename


def shards(planned: list[PlannedTensor], max_bytes: int) -> list[list[PlannedTensor]]:
    """Tensors in file order, cut into shards of at most `max_bytes` (a larger tensor gets its own)."""
    groups: list[list[PlannedTensor]] = [[]]
    size = 0
    for tensor in planned:
        if groups[-1] and size + tensor.nbytes > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(tensor)
        size += tensor.nbytes
    return groups


def synthesize(recipe: Recipe, output: Path, *, seed: int = 0, force: bool = False,
               shard_bytes: int = DEFAULT_SHARD_BYTES, on_tensor: Callable[[PlannedTensor], None] | None = None,
               config_transform: Callable[[dict[str, Any]], None] | None = None,
               tokenizer_from: Path | None = None) -> Path:
    """Write the checkpoint to `output` (atomically); returns its path.

    Tests shrink the model with `config_transform` (edits config.json in place) and lend a
    tokenizer with `tokenizer_from` (a checkpoint folder; default: the family's embedded model).
    Raises SlmkitError when the disk cannot hold it (checked before writing) or the output exists.
    """
    import torch
    from safetensors.torch import save_file

    if output.exists() and not force:
        raise SlmkitError(f"{output} already exists.", hint="Pass --force to replace it, or choose another --output.")
    config = json.loads(json.dumps(recipe_config(recipe)))
    if config_transform:
        config_transform(config)
    donor = tokenizer_from or _donor_checkpoint(text_config(config)["model_type"])
    _adopt_special_tokens(config, donor)
    planned = plan(config)
    total = sum(t.nbytes for t in planned)
    output.resolve().parent.mkdir(parents=True, exist_ok=True)
    require_free_space(output.resolve().parent, total + (64 << 20), f"synthesizing {recipe.name}")
    generator = torch.Generator().manual_seed(seed)
    groups = shards(planned, shard_bytes)
    weight_map: dict[str, str] = {}
    with staged_output(output, force=force) as staging:
        for index, group in enumerate(groups, start=1):
            file_name = f"model-{index:05d}-of-{len(groups):05d}.safetensors"
            tensors = {}
            for tensor in group:
                values = torch.empty(tensor.shape, dtype=torch.bfloat16)
                for rows in values.view(values.shape[0], -1).split(GENERATION_ROWS):  # float32 a block at a time
                    rows.copy_(torch.empty(rows.shape).normal_(tensor.mean, tensor.std, generator=generator))
                tensors[tensor.name] = values
                weight_map[tensor.name] = file_name
                if on_tensor:
                    on_tensor(tensor)
            save_file(tensors, staging / file_name, metadata={"format": "pt"})
            del tensors
        index_json = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (staging / "model.safetensors.index.json").write_text(json.dumps(index_json, indent=2) + "\n",
                                                             encoding="utf-8")
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        _write_generation_config(staging, config)
        for name in TOKENIZER_FILES:
            if (donor / name).is_file():
                shutil.copy2(donor / name, staging / name)
        (staging / "slmkit-synth.json").write_text(json.dumps({
            "recipe": recipe.name, "seed": seed, "tokenizer_from": donor.name, "logit_std": LOGIT_STD,
            "parameters": sum(math.prod(t.shape) for t in planned),
            "note": "random weights at the recipe's exact shapes; not a trained model",
        }, indent=2) + "\n", encoding="utf-8")
    return output.resolve()


def _donor_checkpoint(model_type: str) -> Path:
    from slmkit.converter.models.resolve import resolve_recipe

    donor = TOKENIZER_DONOR.get(model_type)
    if donor is None:
        raise SlmkitError(f"No embedded model lends a tokenizer to {model_type} checkpoints.")
    return resolve_recipe(all_recipes()[donor]).path


def _adopt_special_tokens(config: dict[str, Any], donor: Path) -> None:
    """bos/eos/pad ids of the borrowed tokenizer, so generation and parity use tokens that exist."""
    donor_config = json.loads((donor / "config.json").read_text(encoding="utf-8"))
    generation = donor / "generation_config.json"
    donor_generation = json.loads(generation.read_text(encoding="utf-8")) if generation.is_file() else {}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = donor_generation.get(key, donor_config.get(key))
        for section in {id(config): config, id(text_config(config)): text_config(config)}.values():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value


def _write_generation_config(folder: Path, config: dict[str, Any]) -> None:
    keys = ("bos_token_id", "eos_token_id", "pad_token_id")
    generation = {k: config[k] for k in keys if config.get(k) is not None}
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n", encoding="utf-8")


