"""Host efficiency of llama.cpp decode: the share of this host's memory-bandwidth limit that
single-token decode reaches (best window of 8 steps x bytes per token / copy bandwidth), per GGUF
and thread count, with the CPU share the engine's threads got. `slmkit simulate` transfers this
share to a device, and warns outside runtime/simulate/speed.py EXPECTED_EFFICIENCY.

The anchor column is the run recorded in docs/simulate.md (2 vCPU AMD EPYC, quiet); ratio = this
run / anchor.
Usage:
    python bench/host_efficiency.py [GGUF ...] [--threads 1 2] [--runs 3]
    (no GGUF: the two packaged models, SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from slmkit.runtime.backends.llamacpp import LlamaCppBackend
from slmkit.runtime.models.embedded import resolve_model_file
from slmkit.runtime.simulate.hostcal import measure
from slmkit.runtime.simulate.speed import EXPECTED_EFFICIENCY
from slmkit.runtime.spec import TierSpec

# (file name, threads) -> efficiency, the run in docs/simulate.md (2026-12-05, 2 vCPU AMD EPYC, load 0.7,
# copy 28.4 GB/s; the 1B is `slmkit models synth gemma-3-1b` converted to Q4_K_M)
ANCHOR: dict[tuple[str, int], float] = {
    ("SmolLM2-135M-Instruct.Q4_1.gguf", 1): 0.283, ("SmolLM2-135M-Instruct.Q4_1.gguf", 2): 0.430,
    ("gemma-3-270m-q4_k_m.gguf", 1): 0.504, ("gemma-3-270m-q4_k_m.gguf", 2): 0.645,
    ("gemma1b-ckpt-q4_k_m.gguf", 1): 0.519, ("gemma1b-ckpt-q4_k_m.gguf", 2): 0.773,
}


PACKAGED = ("embedded:smollm2-135m", "embedded:gemma-3-270m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", nargs="*", type=Path)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    paths = args.gguf or [resolve_model_file(name, Path(".")) for name in PACKAGED]
    host = measure()
    print(f"host: {host.cpu}, {host.cores} cores, copy {host.bandwidth_gbs:.1f} GB/s, fp32 {host.gflops:.0f} GFLOPS, "
          f"load {os.getloadavg()[0]:.2f}; expected efficiency {100 * EXPECTED_EFFICIENCY[0]:.0f}-"
          f"{100 * EXPECTED_EFFICIENCY[1]:.0f} %")
    print(f"{'model':44} {'thr':>3} {'MB':>6} {'decode tok/s':>12} {'cpu share':>9} {'prefill':>8} {'efficiency':>10} "
          f"{'anchor':>7} {'ratio':>6}")
    for path in paths:
        size = path.stat().st_size
        for threads in args.threads:
            tier = TierSpec(name="bench", backend="llama.cpp", model=str(path), context_tokens=1024, threads=threads)
            backend = LlamaCppBackend(tier, path)
            try:
                runs = [backend.speed_test() for _ in range(args.runs)]
            finally:
                backend.close()
            best = max(runs, key=lambda r: r.decode_tps)
            efficiency = best.decode_tps * size / (host.bandwidth_gbs * 1e9)
            anchor = ANCHOR.get((path.name, threads))
            print(f"{path.name[:44]:44} {threads:>3} {size / 1e6:>6.0f} {best.decode_tps:>12.1f} {best.cpu_share:>9.2f} "
                  f"{max(r.prefill_tps for r in runs):>8.0f} {100 * efficiency:>9.1f}% "
                  f"{'—' if anchor is None else f'{100 * anchor:.1f}%':>7} "
                  f"{'—' if anchor is None else f'{efficiency / anchor:.2f}':>6}")


if __name__ == "__main__":
    main()
