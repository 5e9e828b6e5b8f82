"""Core ML target: conversion wall time and peak RSS per model and quantization, and the speed of
the numpy MIL evaluator (what `slmkit parity` runs on Linux) next to PyTorch eager on the same model.

Each conversion runs `slmkit convert --target coreml` in a fresh process (figures from the kernel's
own accounting). Evaluator speed: one prefill of --prompt-tokens tokens and --steps cached decode
steps, device-like fp16 rounding on, against transformers in fp32 with its KV cache.
Usage: python bench/coreml_convert.py [MODEL ...] [--quants fp16,int4] [--steps 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import measure


def evaluator_speed(package: Path, ids: list[int], steps: int) -> tuple[float, float]:
    """(prefill seconds, seconds per decode step) in the numpy evaluator."""
    from slmkit.converter.targets.coreml.evaluator import MilEvaluator

    program = MilEvaluator(package, round_fp16=True)
    state = program.make_state()
    start = time.perf_counter()
    out = program.predict({"input_ids": np.array([ids], np.int32), "attention_mask": np.ones((1, len(ids)), np.int32)}, state)
    prefill = time.perf_counter() - start
    token = int(out["logits"][0, -1].argmax())
    start = time.perf_counter()
    for step in range(steps):
        out = program.predict({"input_ids": np.array([[token]], np.int32),
                               "attention_mask": np.ones((1, len(ids) + step + 1), np.int32)}, state)
        token = int(out["logits"][0, -1].argmax())
    return prefill, (time.perf_counter() - start) / steps


def torch_speed(checkpoint: Path, ids: list[int], steps: int) -> tuple[float, float]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.inference_mode():
        start = time.perf_counter()
        out = model(input_ids=torch.tensor([ids]), use_cache=True)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            token = int(out.logits[0, -1].argmax())
            out = model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
    return prefill, (time.perf_counter() - start) / steps


def main() -> None:
    from slmkit.runtime.models.recipe import get_recipe
    from slmkit.converter.models.resolve import resolve_recipe

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--quants", default="fp16,int4")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    conversions, speeds = [], []
    for name in args.models:
        checkpoint = resolve_recipe(get_recipe(name)).path
        ids = [(i * 7919) % 20000 + 100 for i in range(args.prompt_tokens)]
        with tempfile.TemporaryDirectory() as tmp:
            for quant in args.quants.split(","):
                out = Path(tmp) / quant
                run = measure([sys.executable, "-m", "slmkit.cli", "convert", str(checkpoint),
                               "--target", "coreml", "--quant", quant, "--output", str(out)])
                if not run.ok:
                    raise SystemExit(f"converting {name} at {quant} failed: {run.last_error_line}")
                seconds, mib = run.seconds, run.peak_bytes / 2**20
                size = sum(f.stat().st_size for f in (out / "model.mlpackage").rglob("*") if f.is_file()) / 2**20
                conversions.append((name, quant, seconds, mib, size))
                speeds.append((name, quant, *evaluator_speed(out / "model.mlpackage", ids, args.steps),
                               *torch_speed(checkpoint, ids, args.steps)))
    print(f"{'model':<14} {'quant':<6} {'convert s':>9} {'peak MiB':>9} {'package MiB':>11}")
    for name, quant, seconds, mib, size in conversions:
        print(f"{name:<14} {quant:<6} {seconds:>9.1f} {mib:>9.0f} {size:>11.0f}")
    print()
    print(f"{'model':<14} {'quant':<6} {'eval prefill s':>14} {'torch prefill s':>15} {'ratio':>6}   "
          f"{'eval step ms':>12} {'torch step ms':>13} {'ratio':>6}")
    for name, quant, ev_prefill, ev_step, t_prefill, t_step in speeds:
        print(f"{name:<14} {quant:<6} {ev_prefill:>14.2f} {t_prefill:>15.2f} {ev_prefill / t_prefill:>6.1f}   "
              f"{ev_step * 1000:>12.0f} {t_step * 1000:>13.0f} {ev_step / t_step:>6.1f}")
    print(f"({args.prompt_tokens}-token prefill, {args.steps} cached steps; evaluator with fp16 rounding vs "
          "transformers fp32 eager; ratio > 1 means the evaluator is slower)")


if __name__ == "__main__":
    main()
