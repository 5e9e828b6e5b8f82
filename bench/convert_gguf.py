"""Wall time and peak RSS of `slmkit convert --target gguf` vs llama.cpp's official converter.

Both convert the same local checkpoint to F16 in a fresh process; each figure is the minimum over
--repeat runs (the machine is noisy). Usage: python bench/convert_gguf.py [MODEL ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from measure import measure as run_measured

from slmkit.converter import oracle
from slmkit.runtime.models.recipe import get_recipe
from slmkit.converter.models.resolve import resolve_recipe


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one child process."""
    run = run_measured(cmd, env)
    if not run.ok:
        raise SystemExit(f"failed: {' '.join(cmd[:4])}...\n{run.stderr[-2000:]}")
    return run.seconds, run.peak_bytes / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for name in args.models:
        ckpt = resolve_recipe(get_recipe(name))
        with tempfile.TemporaryDirectory() as tmp:
            ours_cmd = [sys.executable, "-m", "slmkit.cli", "convert", str(ckpt.path), "--quant", "f16",
                        "--output", f"{tmp}/ours", "--force"]
            official_cmd, official_env = oracle.official_command(ckpt.path, Path(tmp) / "official.gguf", "f16")
            ours = [measure(ours_cmd, dict(os.environ)) for _ in range(args.repeat)]
            official = [measure(official_cmd, official_env) for _ in range(args.repeat)]
        rows.append((name, min(t for t, _ in ours), min(m for _, m in ours),
                     min(t for t, _ in official), min(m for _, m in official)))
    print(f"{'model':<14} {'slmkit s':>9} {'official s':>11} {'ratio':>6}   {'slmkit MiB':>10} {'official MiB':>12} {'ratio':>6}")
    for name, t_ours, m_ours, t_off, m_off in rows:
        print(f"{name:<14} {t_ours:>9.1f} {t_off:>11.1f} {t_ours / t_off:>6.2f}   {m_ours:>10.0f} {m_off:>12.0f} {m_ours / m_off:>6.2f}")
    print(f"(F16 conversion of the same checkpoint, min of {args.repeat} runs; ratio < 1 means slmkit is faster/leaner)")


if __name__ == "__main__":
    main()
