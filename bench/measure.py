"""Wall time and peak RSS of one child process, from the kernel's own accounting (os.wait4).

Shared by the bench scripts; each figure is one whole process, as `/usr/bin/time -v` reports it.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_bytes: int
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1][:160] if lines else f"exit {self.returncode}"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run `cmd` to completion; peak RSS covers the process and the children it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env or dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    stderr = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    return Run(time.perf_counter() - start, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), stderr)
