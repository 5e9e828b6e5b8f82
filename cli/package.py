"""`slmkit package` and `slmkit verify`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from slmkit.cli.extras import require_extra
from slmkit.cli.paths import writable_folder
from slmkit.cli.report import print_problem
from slmkit.runtime.errors import SlmkitError

console = Console(stderr=True)
out = Console()


def package(
    platform: Annotated[str, typer.Option(help="ios (Core ML, Swift package) | android (ONNX + onnxruntime-genai, "
                                               "Kotlin module) | desktop (GGUF, llama.cpp).")],
    model: Annotated[str, typer.Option(help="Recipe name or local checkpoint folder.")],
    output: Annotated[Path, typer.Option(callback=writable_folder, help="Bundle folder to write.")],
    quant: Annotated[Optional[str], typer.Option(help="Quantization of the platform's artifact (default: the recipe's).")] = None,
    router: Annotated[Optional[Path], typer.Option(help="A router trained by `slmkit router train` (default: the shipped "
                                                        "one; phones need --encoder none).")] = None,
    with_gguf: Annotated[bool, typer.Option("--with-gguf", help="Also include a Q4_K_M GGUF (mobile platforms).")] = False,
    allow_parity_failure: Annotated[bool, typer.Option("--allow-parity-failure",
                                                       help="Package an artifact that fails parity (recorded).")] = False,
    zip_bundle: Annotated[bool, typer.Option("--zip", help="Also write OUTPUT.zip.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing bundle.")] = False,
) -> None:
    """Bundle a parity-checked model, the routing spec and router, and the app template for a platform."""
    require_extra("convert", "package")
    from slmkit.cli.convert import resolve_checkpoint
    from slmkit.converter.package.bundle import (
        build_bundle,
        get_platform,
        precheck_size,
    )
    from slmkit.cli.progress import progress_callback
    from slmkit.runtime.models.recipe import all_recipes

    precheck_size(all_recipes().get(model), get_platform(platform))  # before any download or conversion
    ckpt = resolve_checkpoint(model)
    with progress_callback() as progress:
        manifest = build_bundle(model, ckpt, platform, output, quant=quant, router=router, with_gguf=with_gguf,
                                allow_parity_failure=allow_parity_failure, force=force, progress=progress)
    for entry in manifest["models"]:
        verdict = "passed" if entry["parity"]["passed"] else "[red]FAILED (allowed)[/]"
        console.print(f"{entry['path']}: {entry['bytes'] / 1e6:.1f} MB, parity {verdict}, licence {entry['license'] or 'not recorded (not a recipe: see the model card)'}")
    for device in manifest["ram"]["devices"]:
        fits = "fits" if device["fits"] else "[red]does not fit[/]"
        console.print(f"  {device['label']}: {device['ram_needed_gb']:.2f} of {device['usable_ram_gb']:g} GB, {fits}, "
                      f"~{device['expected_decode_tps']:.0f} tok/s expected")
    if zip_bundle:
        archive = output.resolve().with_suffix(".zip")
        partial = archive.with_name(f".{archive.name}.partial")
        made = shutil.make_archive(str(partial.with_suffix("")), "zip", root_dir=output.resolve().parent,
                                   base_dir=output.resolve().name)
        Path(made).replace(archive)
        console.print(f"[green]Wrote[/] {archive}")
    for note in manifest.get("notes", []):
        console.print(f"[yellow]note[/] {note}", highlight=False)
    console.print(f"[green]Wrote[/] {output.resolve()} ({len(manifest['files'])} files)")
    out.print(str(output.resolve()))


def verify(bundle: Annotated[Path, typer.Argument(help="Bundle folder written by `slmkit package`.")]) -> None:
    """Check every file of a bundle against its manifest (sha256 and size), and every download the app templates
    fetched into it against its pinned SHA-256; exit 1 naming any that differ."""
    from slmkit.runtime.manifest import (BUNDLE, BUNDLE_BUILD_OUTPUTS, SIGNATURES, check_files, check_pinned_downloads,
                                         read_manifest)
    from slmkit.runtime.validation import spec_paths_inside

    manifest = read_manifest(bundle, BUNDLE)
    problems = check_files(bundle, manifest, unlisted=SIGNATURES, build_outputs=BUNDLE_BUILD_OUTPUTS)
    problems += check_pinned_downloads(bundle)
    if not problems and (bundle / "routing.json").is_file():   # files intact: is the spec self-contained?
        problems = spec_paths_inside(bundle / "routing.json")
    if problems:
        for problem in problems:
            print_problem(console, "[red]✗[/]", problem)
        raise SlmkitError(f"{bundle} does not match its manifest: {len(problems)} problem(s), first: {problems[0]}")
    console.print(f"[green]✓[/] {bundle}: all {len(manifest['files'])} files match the manifest "
                  f"({manifest['platform']}, slmkit {manifest['versions'].get('slmkit', 'unknown')}).")
