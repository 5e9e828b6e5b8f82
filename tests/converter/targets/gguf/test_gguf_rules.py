"""Every architecture rule the GGUF writer encodes is needed: with the rule broken in the written
file, llama.cpp's logits miss the f16 parity bound by far (the ONNX and Core ML builders have the
same test over tests/converter/targets/mutations.py; these are the GGUF forms of those rules).

A mutation rewrites the intact f16 GGUF (gguf-py reader -> writer): a tensor changed or dropped, or
a metadata value changed, exactly what a converter bug would leave in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.converter.targets.mutations import IDS, kl_mean, reference_logits


@dataclass(frozen=True)
class Mutation:
    fixture: str
    drop: tuple[str, ...] = ()  # tensors removed from the file (whole names, or the part after "blk.N.")
    # (tensor name, data, the intact file's RoPE factor tensors by name) -> data
    change: Callable[[str, np.ndarray, dict[str, np.ndarray]], np.ndarray] | None = None
    metadata: dict[str, object] = field(default_factory=dict)  # key suffix (after "<arch>.") -> new value


def _norms_without_gemma_shift(name: str, data: np.ndarray, _intact: dict) -> np.ndarray:
    """Gemma multiplies by 1 + w and llama.cpp expects the writer to store 1 + w: store w instead."""
    return data - 1 if name.endswith("norm.weight") and "attn_" not in name else data


def _unpermuted_qk(name: str, data: np.ndarray, _intact: dict) -> np.ndarray:
    """Llama's Q/K rows in Hugging Face order (llama.cpp's RoPE pairs adjacent dims: the writer permutes)."""
    if not name.endswith(("attn_q.weight", "attn_k.weight")):
        return data
    heads = 4 if name.endswith("attn_q.weight") else 2
    rows = data.reshape(heads, 2, data.shape[0] // heads // 2, *data.shape[1:])
    return rows.swapaxes(1, 2).reshape(data.shape)


def _full_rotary_factors(name: str, data: np.ndarray, _intact: dict) -> np.ndarray:
    """Phi-3's longrope factors widened to a full-head rotary (one per frequency pair): 16 dims, 8 pairs."""
    return np.concatenate([data, np.ones(8 - data.shape[0], data.dtype)]) if name.startswith("rope_factors") else data


def _short_factors_for_long(name: str, data: np.ndarray, intact: dict) -> np.ndarray:
    """Phi-3's long-context factors replaced by its short ones (a writer ignoring `long_factor`)."""
    return intact["rope_factors_short.weight"] if name == "rope_factors_long.weight" else data


RULES = {
    "llama Q/K permutation": Mutation("llama", change=_unpermuted_qk),
    "gemma3 RMSNorm stores 1 + w": Mutation("gemma3", change=_norms_without_gemma_shift),
    "gemma3 sliding window": Mutation("gemma3", metadata={"attention.sliding_window": 1_000_000}),
    "gemma3 linear RoPE scaling (4B/12B)": Mutation("gemma3-multimodal", metadata={"rope.scaling.factor": 1.0}),
    "llama3 RoPE scaling (rope_freqs)": Mutation("llama3-rope", drop=("rope_freqs.weight",)),
    "phi3 longrope long factors": Mutation("phi4-mini", change=_short_factors_for_long),
    "phi3 partial rotary": Mutation("phi4-mini", change=_full_rotary_factors, metadata={"rope.dimension_count": 16}),
    "qwen2 Q/K/V biases": Mutation("qwen2", drop=("attn_q.bias", "attn_k.bias", "attn_v.bias")),
    "qwen2 untied output projection": Mutation("qwen2", drop=("output.weight",)),
}


def rewrite(src: Path, dst: Path, mutation: Mutation) -> None:
    import gguf

    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    changed = {f"{arch}.{key}": value for key, value in mutation.metadata.items()}
    assert set(changed) <= set(reader.fields), f"the intact file has no {set(changed) - set(reader.fields)}"
    for name, fld in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = fld.types[0]
        sub_type = fld.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, changed.get(name, fld.contents()), vtype, sub_type=sub_type)
    small = {t.name: np.array(t.data) for t in reader.tensors if t.name.startswith("rope_")}
    dropped = 0
    for tensor in reader.tensors:
        if any(tensor.name == d or tensor.name.endswith("." + d) for d in mutation.drop):
            dropped += 1
            continue
        data = np.array(tensor.data)
        if mutation.change is not None:
            data = mutation.change(tensor.name, data.astype(np.float32), small).astype(data.dtype)
        writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
    assert dropped or not mutation.drop, f"the intact file has no {mutation.drop}"
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama_cpp_logits(path: Path, ids: list[int]) -> np.ndarray:
    from slmkit.converter.targets.gguf.target import longrope_window
    from slmkit.runtime.engines.llamacpp import LlamaCppRunner

    runner = LlamaCppRunner(path, len(ids) + 8, threads=2, window_of=longrope_window)
    try:
        return np.array(runner.greedy(ids, 1).prefill, dtype=np.float32)
    finally:
        runner.close()


@pytest.fixture(scope="module")
def intact(fixture_dir, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, np.ndarray, float]]:
    """Per fixture, once: (intact f16 GGUF, PyTorch logits, the GGUF's KL against them)."""
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.converter.models.resolve import resolve
    from slmkit.converter.targets.gguf.writer import GGUFPlan

    cache: dict[str, tuple[Path, np.ndarray, float]] = {}

    def get(name: str) -> tuple[Path, np.ndarray, float]:
        if name not in cache:
            folder = fixture_dir(name)
            path = tmp_path_factory.mktemp(f"gguf-{name}") / "intact.gguf"
            GGUFPlan(Checkpoint.open(folder, {"kind": "local"}), "f16").write(path, name, None, lambda _t: None)
            expected = reference_logits(resolve(str(folder)), IDS)
            cache[name] = (path, expected, kl_mean(expected, llama_cpp_logits(path, IDS)))
        return cache[name]

    return get


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_is_needed(rule: str, intact, tmp_path: Path) -> None:
    from slmkit.converter.targets.registry import get_target_spec

    mutation = RULES[rule]
    path, expected, intact_kl = intact(mutation.fixture)
    bound = get_target_spec("gguf").quant("f16").thresholds["kl_mean_max"]
    assert intact_kl < bound, f"the intact GGUF must pass f16 parity ({intact_kl:.3g})"
    rewrite(path, tmp_path / "broken.gguf", mutation)
    broken = kl_mean(expected, llama_cpp_logits(tmp_path / "broken.gguf", IDS))
    assert broken > 10 * bound, f"breaking '{rule}' must fail parity (KL {broken:.3g})"


def test_an_unchanged_rewrite_still_passes(intact, tmp_path: Path) -> None:
    """The rewrite itself changes nothing: the mutations above are the only differences."""
    path, expected, intact_kl = intact("llama")
    rewrite(path, tmp_path / "same.gguf", Mutation("llama"))
    assert kl_mean(expected, llama_cpp_logits(tmp_path / "same.gguf", IDS)) == pytest.approx(intact_kl, abs=1e-9)


def test_quantize_log_keeps_warnings_and_counts_fallbacks() -> None:
    from slmkit.converter.targets.gguf.quantize import QuantizeLog

    log = QuantizeLog()
    log.feed(2, "[   1/ 272] blk.0.attn_k.weight - converting to q4_K\n")  # INFO: dropped
    log.feed(3, "warning: blk.0.attn_k.weight - ncols 576 not divisible by 256 (required for type q4_K) ")
    log.feed(5, "-> falling back to q5_0\n")  # CONT of the WARN line
    log.feed(4, "llama_model_quantize: failed to open file\n")
    log.feed(5, "\n")
    assert log.fallbacks == {"q5_0": 1}
    assert log.lines == ["llama_model_quantize: failed to open file"]
