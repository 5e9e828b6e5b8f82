"""What the GGUF target writes per architecture, keyed by the decoder's `config.model_type`, as
gguf-py keeps `MODEL_TENSORS[arch]` per format. The architecture-neutral facts (norm layout, Gemma's
w - 1 norms, defaults) are in converter/architectures.py; these rows are what llama.cpp's graph for
the architecture expects in the file. Each row names the llama.cpp code it follows (convert_hf_to_gguf.py
class, and the hyper-parameters `llama_model::load_hparams` reads for that LLM_ARCH).
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf

from slmkit.converter.errors import SlmkitError


@dataclass(frozen=True)
class GGUFArchitecture:
    """llama.cpp's expectations for one architecture (a row of GGUF_ARCHITECTURES)."""

    gguf_arch: gguf.MODEL_ARCH
    # llama.cpp's llama graph expects Q/K rows interleaved per RoPE pair; HF stores halves.
    permute_qk: bool = False
    # Gemma pads the embedding past the tokenizer's vocabulary; llama.cpp wants them equal.
    trim_embeddings_to_vocab: bool = False
    # Architecture-specific keys llama.cpp reads for this graph.
    writes_vocab_size: bool = False
    writes_rope_dimension_count: bool = False
    writes_sliding_window: bool = False
    writes_final_logit_softcapping: bool = False
    # Phi-3 family: longrope as two factor tensors plus an attention factor and the pre-scaling
    # context length; no head_dim or rope-scaling-type keys.
    longrope_tensors: bool = False
    writes_head_dim: bool = True


GGUF_ARCHITECTURES: dict[str, GGUFArchitecture] = {
    # convert_hf_to_gguf.py LlamaModel (permute of q_proj/k_proj; vocab_size and rope dimension count keys).
    "llama": GGUFArchitecture(gguf.MODEL_ARCH.LLAMA, permute_qk=True, writes_vocab_size=True,
                              writes_rope_dimension_count=True),
    # Gemma3Model: embedding trimmed to the vocabulary, sliding window and final-logit softcapping keys
    # (the +1 of Gemma's RMSNorm weights is the architecture's `norm_shift`, folded by the writer).
    "gemma3_text": GGUFArchitecture(gguf.MODEL_ARCH.GEMMA3, trim_embeddings_to_vocab=True, writes_sliding_window=True,
                                    writes_final_logit_softcapping=True),
    # Qwen2Model: the llama graph's keys, q/k/v biases as tensors, no permutation.
    "qwen2": GGUFArchitecture(gguf.MODEL_ARCH.QWEN2),
    # Phi3MiniModel: rope_factors_long/short tensors, rope dimension count, sliding window, no head_dim.
    "phi3": GGUFArchitecture(gguf.MODEL_ARCH.PHI3, writes_rope_dimension_count=True, writes_sliding_window=True,
                             longrope_tensors=True, writes_head_dim=False),
}


def gguf_architecture(model_type: str) -> GGUFArchitecture:
    """The row for `model_type`. Raises SlmkitError listing the architectures the GGUF target writes."""
    if model_type not in GGUF_ARCHITECTURES:
        raise SlmkitError(f"The GGUF target does not write {model_type} yet.",
                          hint=f"Supported: {', '.join(sorted(GGUF_ARCHITECTURES))}.")
    return GGUF_ARCHITECTURES[model_type]
