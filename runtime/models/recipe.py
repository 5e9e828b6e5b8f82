"""Recipes: what slmkit knows about each model it ships, loaded from `recipes/*.yaml`.

Recipes are data. Code never branches on a model's name; it reads these fields.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from slmkit.runtime.errors import SlmkitError

TargetName = Literal["gguf", "onnx", "coreml"]


class KVShape(BaseModel):
    model_config = ConfigDict(extra="forbid")
    layers: int
    kv_heads: int
    head_dim: int


class PackagedSource(BaseModel):
    """A GGUF shipped inside a PyPI package: the offline source of an embedded default model."""

    model_config = ConfigDict(extra="forbid")
    pypi: str
    module: str
    file: str
    quant: str
    note: str


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    hf_repo: str
    architecture: str
    model_type: str
    params_billion: float
    context_length: int
    license: str
    kv: KVShape
    tied_embeddings: bool
    ram_gb: dict[str, float]
    default_quant: dict[TargetName, str]
    notes: str = ""
    text_decoder_only: bool = False
    packaged: PackagedSource | None = None
    revision: str | None = Field(default=None, description="Pinned hub revision, if any")


@lru_cache(maxsize=1)
def all_recipes() -> dict[str, Recipe]:
    """Every recipe shipped with slmkit, by name."""
    recipes: dict[str, Recipe] = {}
    for entry in sorted(resources.files("slmkit.recipes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            recipe = Recipe.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8")))
            recipes[recipe.name] = recipe
    return recipes


def get_recipe(name: str) -> Recipe:
    """The shipped recipe `name`. Raises SlmkitError suggesting close names when there is none."""
    recipes = all_recipes()
    if name in recipes:
        return recipes[name]
    close = difflib.get_close_matches(name, list(recipes), n=4, cutoff=0.5)
    suggestion = f"Did you mean: {', '.join(close)}?" if close else f"Known recipes: {', '.join(recipes)}."
    raise SlmkitError(f"Unknown model '{name}'.", hint=suggestion)


def close_recipe_names(name: str) -> list[str]:
    """Up to 4 recipe names resembling `name` (difflib ratio >= 0.5)."""
    return difflib.get_close_matches(name, list(all_recipes()), n=4, cutoff=0.5)
