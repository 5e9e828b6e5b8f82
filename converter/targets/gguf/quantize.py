"""Quantize a GGUF with llama.cpp's own quantizer (the one llama.cpp users trust)."""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from slmkit.converter.errors import SlmkitError

# slmkit quant name -> llama.cpp `LLAMA_FTYPE_*` constant name.
QUANT_FTYPES: dict[str, str] = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}

# `enum ggml_log_level` in ggml/include/ggml.h (llama.cpp as vendored by llama-cpp-python 0.3.x):
# NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line's level).
_WARN, _CONT = 3, 5
# llama-quant.cpp: "... - ncols N not divisible by 256 (required for type q4_K) -> falling back to q5_0".
_FALLBACK = re.compile(r"falling back to\s+(\w+)")


@dataclass
class QuantizeLog:
    """What llama.cpp's quantizer said at WARN level or above (its per-tensor INFO lines are dropped).

    ``fallbacks`` counts tensors per the type llama.cpp used instead of the requested K-quant
    (rows not a multiple of the 256-weight super-block); ``lines`` keeps every other warning/error.
    """

    fallbacks: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    _level: int = field(default=0, init=False, repr=False)  # level of the line being continued
    _partial: str = field(default="", init=False, repr=False)  # text of a line not yet ended

    def feed(self, level: int, text: str) -> None:
        """One llama.cpp log callback (`level` a ggml log level, CONT continuing the previous one):
        warnings and errors kept line by line, K-quant fallbacks counted per fallback type instead.
        """
        level = self._level if level == _CONT else level
        self._level = level
        if level < _WARN:
            return
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            match = _FALLBACK.search(line)
            if match:
                self.fallbacks[match[1]] = self.fallbacks.get(match[1], 0) + 1
            elif line.strip():
                self.lines.append(line.strip())


def quantize(source: Path, dest: Path, quant: str, threads: int | None = None) -> QuantizeLog:
    """Quantize ``source`` (an F32/F16/BF16 GGUF) into ``dest`` at ``quant`` (a key of QUANT_FTYPES).

    llama.cpp's log goes to the returned QuantizeLog instead of stderr while it runs (272 lines
    per 135M model otherwise). Raises SlmkitError with llama.cpp's last warnings when it fails.
    """
    import llama_cpp
    from llama_cpp import _logger

    log = QuantizeLog()

    @llama_cpp.llama_log_callback
    def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        log.feed(level, text.decode("utf-8", errors="replace"))

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_FTYPES[quant])
    params.nthread = threads or os.cpu_count() or 1
    llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))
    try:
        result = llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(), ctypes.byref(params))
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    if result != 0 or not dest.is_file():
        said = "; ".join(log.lines[-3:]) or "no message"
        raise SlmkitError(f"llama.cpp's quantizer failed on {source} (code {result}): {said}")
    return log
