"""This machine's own memory bandwidth and compute, measured once and cached.

The simulator predicts a device's speed by transferring what the host achieves: decode is bound
by memory bandwidth, prefill by compute. Measuring the host with the same yardstick as the device
figures (a STREAM-style copy, an fp32 matrix product) makes the ratio meaningful.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from slmkit.runtime.paths import cache_dir

COPY_BYTES = 256 * 1024**2   # well past every cache level
MATMUL_SIZE = 1024


@dataclass(frozen=True)
class HostCalibration:
    bandwidth_gbs: float     # copy: bytes read + bytes written per second
    gflops: float            # fp32 matrix product, all threads numpy uses
    cpu: str
    cores: int


def _best_of(repeats: int, run) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure() -> HostCalibration:
    """This host's memory bandwidth (GB/s, best of 5 copies of COPY_BYTES, counted read + write) and
    float32 matmul speed (GFLOP/s, best of 5 MATMUL_SIZE² products): the two numbers device
    predictions scale from (runtime/simulate/speed.py).
    """
    source = np.ones(COPY_BYTES // 8)
    target = np.empty_like(source)
    copy_s = _best_of(5, lambda: np.copyto(target, source))
    a = np.random.default_rng(0).standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32)
    a @ a  # warm the BLAS thread pool
    matmul_s = _best_of(5, lambda: a @ a)
    return HostCalibration(bandwidth_gbs=2 * COPY_BYTES / copy_s / 1e9, gflops=2 * MATMUL_SIZE**3 / matmul_s / 1e9,
                           cpu=_cpu_name(), cores=os.cpu_count() or 1)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_calibration(refresh: bool = False) -> HostCalibration:
    """Cached per CPU model and core count: a busy moment should not be re-measured into every run."""
    path = cache_dir() / "host-calibration.json"
    key = f"{_cpu_name()}|{os.cpu_count()}"
    if not refresh and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") == key:
                return HostCalibration(**data["calibration"])
        except (ValueError, KeyError, TypeError):
            pass
    calibration = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "calibration": asdict(calibration)}, indent=2) + "\n", encoding="utf-8")
    return calibration
