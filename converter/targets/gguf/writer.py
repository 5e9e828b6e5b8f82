"""Write a Hugging Face decoder as an unquantized GGUF (F32, F16 or BF16), one tensor at a time.

The file layout (names from `gguf.TensorNameMap`, keys from `gguf.Keys`) is checked against
llama.cpp's official converter by the oracle tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gguf
import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.checkpoint import Checkpoint, TensorRef
from slmkit.converter.targets.gguf.architectures import gguf_architecture
from slmkit.converter.targets.gguf.vocab import Vocab, read_vocab

if TYPE_CHECKING:
    import torch

FLOAT_TYPES: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "bf16": (gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16),
}
_BYTES = {gguf.GGMLQuantizationType.F32: 4, gguf.GGMLQuantizationType.F16: 2, gguf.GGMLQuantizationType.BF16: 2}


@dataclass
class PlannedTensor:
    """One GGUF tensor: where its data comes from and how it is transformed on the way."""

    name: str
    shape: tuple[int, ...]
    qtype: gguf.GGMLQuantizationType
    produce: Callable[[], np.ndarray]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * _BYTES[self.qtype]


def rope_parameters(h: dict[str, Any]) -> dict[str, Any]:
    """transformers-5 `rope_parameters`, also for configs still using rope_theta/rope_scaling."""
    params = dict(h.get("rope_parameters") or h.get("rope_scaling") or {})
    if "full_attention" not in params and "sliding_attention" not in params:
        params.setdefault("rope_theta", h.get("rope_theta"))
        if "type" in params:
            params.setdefault("rope_type", params["type"])
        if h.get("rope_local_base_freq") is not None:
            params["sliding_attention"] = {"rope_theta": h["rope_local_base_freq"]}
    return params


def llama3_rope_factors(params: dict[str, Any], rope_dim: int) -> np.ndarray:
    """Per-frequency divisors for Llama 3's long-context RoPE; llama.cpp reads them as rope_freqs.

    Computed in float32 torch, the arithmetic transformers itself uses for these frequencies.
    """
    import torch

    factor = float(params.get("factor", 8.0))
    low = float(params.get("low_freq_factor", 1.0))
    high = float(params.get("high_freq_factor", 4.0))
    old_context = float(params.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / (params["rope_theta"] ** (torch.arange(0, rope_dim, 2, dtype=torch.float32) / rope_dim))
    wavelen = 2 * math.pi / freqs
    smooth = (old_context / wavelen - low) / (high - low)
    blended = 1 / ((1 - smooth) / factor + smooth)
    factors = torch.where(wavelen < old_context / high, torch.ones_like(freqs),
                          torch.where(wavelen > old_context / low, torch.full_like(freqs, factor), blended))
    return factors.to(torch.float32).numpy()


class GGUFPlan:
    """Everything that goes into the file, decided before a single weight is read."""

    def __init__(self, ckpt: Checkpoint, outtype: str) -> None:
        if outtype not in FLOAT_TYPES:
            raise SlmkitError(f"Unknown GGUF float type '{outtype}'.", hint=f"Use one of {', '.join(FLOAT_TYPES)}.")
        self.ckpt = ckpt
        self.arch = ckpt.architecture
        self.gguf_facts = gguf_architecture(ckpt.model_type)
        self.h = ckpt.text_config
        self.file_type, self.weight_qtype = FLOAT_TYPES[outtype]
        self.n_layers = int(self.h["num_hidden_layers"])
        self.vocab: Vocab = read_vocab(ckpt.path, self.h.get("vocab_size"))
        self.rope = rope_parameters(self.h)
        self.tensors = self._plan_tensors()

    # -- hyper-parameters -------------------------------------------------------------------
    def _p(self, key: str) -> Any:
        return self.ckpt.hparam(key)

    @property
    def rope_dim(self) -> int:
        """Rotary dimensions per head (Phi-3/4 rotate only a fraction of each head)."""
        fraction = self.rope.get("partial_rotary_factor", self.h.get("partial_rotary_factor"))
        if fraction is not None:
            return int(float(fraction) * self.h["hidden_size"]) // int(self.h["num_attention_heads"])
        return int(self._p("head_dim") or self.h["hidden_size"] // self.h["num_attention_heads"])

    def add_metadata(self, writer: gguf.GGUFWriter, name: str, license_name: str | None) -> None:
        """The `general.*` keys (type, name, license, quantization version, file type) and the
        hyper-parameter keys llama.cpp's `load_hparams` reads: block count, context, widths, heads,
        RMSNorm epsilon, RoPE (base, linear/YaRN scaling, longrope's original context and attention
        factor; the longrope factors themselves are tensors, see `_longrope_factor_tensors`), the
        architecture row's extra keys and the tokenizer. Raises SlmkitError for a RoPE type the GGUF
        target does not write.
        """
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        if license_name:
            writer.add_license(license_name)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        writer.add_block_count(self.n_layers)
        writer.add_context_length(int(self._p("max_position_embeddings")))
        writer.add_embedding_length(int(self.h["hidden_size"]))
        writer.add_feed_forward_length(int(self.h["intermediate_size"]))
        writer.add_head_count(int(self._p("num_attention_heads")))
        writer.add_head_count_kv(int(self._p("num_key_value_heads") or self._p("num_attention_heads")))
        writer.add_layer_norm_rms_eps(float(self._p("rms_norm_eps")))
        full = self.rope.get("full_attention", self.rope)
        rope_type = full.get("rope_type", "default")
        if self.gguf_facts.longrope_tensors:
            self._add_longrope(writer, full)
        elif rope_type == "linear" and full.get("factor") is not None:
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(full["factor"]))
        elif rope_type == "yarn" and full.get("factor") is not None:
            writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            writer.add_rope_scaling_factor(float(full["factor"]))
            writer.add_rope_scaling_orig_ctx_len(int(full["original_max_position_embeddings"]))
        elif rope_type not in ("default", "llama3"):
            raise SlmkitError(f"RoPE type '{rope_type}' is not supported for GGUF export yet.")
        theta = full.get("rope_theta") or self.arch.defaults.get("rope_theta")
        if theta is not None:
            writer.add_rope_freq_base(float(theta))
        if (local := self.rope.get("sliding_attention", {}).get("rope_theta")) is not None:
            writer.add_rope_freq_base_swa(float(local))
        if self.gguf_facts.writes_head_dim and (self.h.get("head_dim") is not None or "head_dim" in self.arch.defaults):
            writer.add_key_length(int(self._p("head_dim")))
            writer.add_value_length(int(self._p("head_dim")))
        if self.gguf_facts.writes_vocab_size:
            writer.add_vocab_size(int(self.h["vocab_size"]))
        if self.gguf_facts.writes_rope_dimension_count:
            writer.add_rope_dimension_count(self.rope_dim)
        if self.gguf_facts.writes_final_logit_softcapping and self.h.get("final_logit_softcapping"):
            writer.add_final_logit_softcapping(float(self.h["final_logit_softcapping"]))
        if self.gguf_facts.writes_sliding_window and self.h.get("sliding_window_pattern") != 1:
            writer.add_sliding_window(int(self.h.get("sliding_window") or 0))  # 0: no sliding window
        writer.add_file_type(self.file_type)
        self.vocab.add_to(writer, self.ckpt.path)

    def _add_longrope(self, writer: gguf.GGUFWriter, full: dict[str, Any]) -> None:
        """Phi-3/4: the pre-scaling context, and for longrope the attention factor for the long regime."""
        original = int(full.get("original_max_position_embeddings") or self.h["original_max_position_embeddings"])
        writer.add_rope_scaling_orig_ctx_len(original)
        rope_type = full.get("rope_type", "default")
        if rope_type not in ("default", "longrope", "su"):
            raise SlmkitError(f"RoPE type '{rope_type}' is not supported for {self.arch.model_type} GGUF export.")
        if not full.get("long_factor"):
            return
        scale = int(self._p("max_position_embeddings")) / original
        writer.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1.0 else 1.0)

    def _longrope_factor_tensors(self) -> list[PlannedTensor]:
        full = self.rope.get("full_attention", self.rope)
        if not (self.gguf_facts.longrope_tensors and full.get("long_factor")):
            return []
        planned = []
        for key, tensor in (("long_factor", gguf.MODEL_TENSOR.ROPE_FACTORS_LONG),
                            ("short_factor", gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT)):
            factors = np.asarray(full[key], dtype=np.float32)
            if factors.shape != (self.rope_dim // 2,):
                raise SlmkitError(f"rope {key} has {factors.size} values; {self.rope_dim // 2} expected.")
            planned.append(PlannedTensor(gguf.TENSOR_NAMES[tensor] + ".weight", factors.shape,
                                         gguf.GGMLQuantizationType.F32, lambda f=factors: f))
        return planned

    # -- tensors ----------------------------------------------------------------------------
    def _plan_tensors(self) -> list[PlannedTensor]:
        name_map = gguf.get_tensor_name_map(self.gguf_facts.gguf_arch, self.n_layers)
        tied = bool(self.h.get("tie_word_embeddings", False))
        planned: list[PlannedTensor] = []
        full = self.rope.get("full_attention", self.rope)
        if full.get("rope_type") == "llama3":
            factors = llama3_rope_factors(full, self.rope_dim)
            planned.append(PlannedTensor(
                gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
                factors.shape, gguf.GGMLQuantizationType.F32, lambda f=factors: f))
        planned.extend(self._longrope_factor_tensors())
        for ref in self.ckpt.tensors():
            if ref.name.endswith("rotary_emb.inv_freq") or (tied and ref.name == "lm_head.weight"):
                continue
            new_name = name_map.get_name(ref.name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise SlmkitError(
                    f"Tensor '{ref.source_name}' has no GGUF name for {self.arch.model_type}.",
                    hint="The checkpoint does not match its config's architecture.",
                )
            shape = ref.shape
            if self.gguf_facts.trim_embeddings_to_vocab and ref.name == "model.embed_tokens.weight":
                shape = (min(shape[0], len(self.vocab.tokens)), *shape[1:])
            qtype = self.weight_qtype
            if len(shape) <= 1 or new_name.endswith("_norm.weight"):
                qtype = gguf.GGMLQuantizationType.F32
            planned.append(PlannedTensor(new_name, shape, qtype, self._producer(ref, shape, qtype)))
        return planned

    def _producer(self, ref: TensorRef, shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> Callable[[], np.ndarray]:
        def produce() -> np.ndarray:
            import torch

            data = ref.load().to(torch.float32)
            if tuple(data.shape) != ref.shape:
                raise SlmkitError(f"Tensor '{ref.source_name}' has shape {tuple(data.shape)}, its header says {ref.shape}.")
            data = self._transform(ref.name, data)[: shape[0]]
            return _to_gguf_numpy(data, qtype)

        return produce

    def _transform(self, name: str, data: torch.Tensor) -> torch.Tensor:
        if self.gguf_facts.permute_qk and name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
            data = _permute_rope(data, int(self._p("num_attention_heads")))
        elif self.gguf_facts.permute_qk and name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
            data = _permute_rope(data, int(self._p("num_key_value_heads") or self._p("num_attention_heads")))
        if self.arch.norm_shift and name.endswith("norm.weight"):
            data = data + self.arch.norm_shift
        return data

    def write(self, path: Path, name: str, license_name: str | None, on_tensor: Callable[[PlannedTensor], None]) -> None:
        """The whole file at `path`: header, metadata and tensor table first, then each tensor produced,
        checked against its planned shape and written, one at a time (`on_tensor` after each).
        Raises SlmkitError when a produced tensor's shape differs from the plan (the file is closed;
        the caller's staging folder discards it).
        """
        writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[self.gguf_facts.gguf_arch])
        try:
            self.add_metadata(writer, name, license_name)
            for tensor in self.tensors:
                dtype = np.float32 if tensor.qtype == gguf.GGMLQuantizationType.F32 else (
                    np.float16 if tensor.qtype == gguf.GGMLQuantizationType.F16 else np.uint16)
                writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(dtype), tensor.nbytes,
                                       raw_dtype=tensor.qtype)
            writer.write_header_to_file(path)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for tensor in self.tensors:
                data = tensor.produce()
                if data.shape != tensor.shape:
                    raise SlmkitError(f"Tensor {tensor.name}: produced shape {data.shape}, planned {tensor.shape}.")
                writer.write_tensor_data(data)
                on_tensor(tensor)
        finally:
            writer.close()


def _permute_rope(weights: torch.Tensor, n_head: int) -> torch.Tensor:
    """HF keeps each head's rotary halves apart; llama.cpp wants them as interleaved pairs."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _to_gguf_numpy(data: torch.Tensor, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    import torch

    if qtype == gguf.GGMLQuantizationType.F32:
        return data.to(torch.float32).contiguous().numpy()
    if qtype == gguf.GGMLQuantizationType.F16:
        return data.to(torch.float16).contiguous().numpy()
    return data.to(torch.bfloat16).contiguous().view(torch.uint16).numpy()
