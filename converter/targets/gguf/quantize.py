"""Quantize a GGUF with llama.cpp's own quantizer (the one llama.cpp users trust)."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

from slmkit.converter.errors import SlmkitError

# slmkit quant name -> llama.cpp `LLAMA_FTYPE_*` constant name.
QUANT_FTYPES: dict[str, str] = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}


def quantize(source: Path, dest: Path, quant: str, threads: int | None = None) -> None:
    import llama_cpp

    # llama.cpp logs one line per tensor; keep its warnings (e.g. K-quant fallbacks), drop the rest.
    logging.getLogger("llama-cpp-python").setLevel(logging.WARNING)

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_FTYPES[quant])
    params.nthread = threads or os.cpu_count() or 1
    result = llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(), ctypes.byref(params))
    if result != 0 or not dest.is_file():
        raise SlmkitError(f"llama.cpp's quantizer failed on {source} (code {result}).")
