"""GGUF target: an unquantized GGUF written by slmkit, then llama.cpp's quantizer if asked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.base import ConvertOptions, ConvertResult, SpecAttributes, refuse_options
from slmkit.converter.targets.gguf.architectures import gguf_architecture
from slmkit.converter.targets.gguf.quantize import QUANT_FTYPES, quantize
from slmkit.converter.targets.gguf.spec import SPEC
from slmkit.converter.targets.gguf.writer import GGUFPlan

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.runtime.engines.base import Runner
    from slmkit.runtime.progress import Steps

_SOURCE_FLOAT = {"F32": "f32", "F16": "f16", "BF16": "bf16"}


def intermediate_type(ckpt: Checkpoint) -> str:
    """Quantize from the checkpoint's own float type so the quantizer sees the exact weights."""
    dtypes = {ref.dtype for ref in ckpt.tensors() if len(ref.shape) > 1}
    return _SOURCE_FLOAT.get(dtypes.pop(), "f32") if len(dtypes) == 1 else "f32"


class GGUFTarget(SpecAttributes):
    spec = SPEC

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        """Refuses --block-size and the other targets' options, and an architecture without a row in
        converter/targets/gguf/architectures.py, before any work.
        """
        if options.block_size is not None:
            raise SlmkitError("--block-size does not apply to GGUF: llama.cpp's quant types fix their block sizes.",
                              hint="Drop --block-size, or use --target onnx.")
        refuse_options(self.name, options)
        gguf_architecture(ckpt.model_type)  # an architecture without a row fails before any work

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        """Disk the conversion needs, bytes: the final file at the quant's bits per weight plus, for a
        llama.cpp quant, the float GGUF it is quantized from; 5 % and 64 MiB of margin.
        """
        n_params = sum(math.prod(ref.shape) for ref in ckpt.tensors())
        final = SPEC.quant(quant).stored_bytes(n_params)
        staging = 0 if quant not in QUANT_FTYPES else SPEC.quant(intermediate_type(ckpt)).stored_bytes(n_params)
        return int((final + staging) * 1.05) + (64 << 20)

    def estimate_memory(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> int:
        """The largest tensor dominates: read as stored, widened to float32, written out; llama.cpp's
        quantizer then holds it read, widened and quantized (measured peaks: Gemma 3 1B 2.7 GB,
        4B 5.0 GB; docs/scale.md). Estimate: 8 bytes per element of the largest tensor."""
        from slmkit.converter.preflight import BASE_BYTES, WeightStats

        return BASE_BYTES + 8 * WeightStats.of(ckpt).largest

    def context_limit(self, artifact: Path, manifest: dict, engine: str) -> int | None:
        """llama.cpp's context is sized to what parity needs."""
        return None

    def engine_memory(self, artifact: Path, manifest: dict, engine: str, n_ctx: int, vocab: int) -> int:
        """The mapped GGUF, llama.cpp's all-positions logits buffer and parity's copy of it."""
        from slmkit.converter.preflight import BASE_BYTES

        return BASE_BYTES + (artifact / manifest["model_file"]).stat().st_size + 2 * n_ctx * vocab * 4

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, steps: Steps,
                options: ConvertOptions) -> ConvertResult:
        """<name>-<quant>.gguf written by gguf-py. Float quants (f32, f16, bf16) are written directly;
        llama.cpp quants (q*) are written at the checkpoint's float type to a hidden file, then
        quantized by llama.cpp's `llama_model_quantize`, their K-quant fallbacks recorded.
        """
        stem = ckpt.recipe.name if ckpt.recipe else ckpt.path.name
        final = out / f"{stem}-{quant}.gguf"
        float_type = quant if quant not in QUANT_FTYPES else intermediate_type(ckpt)
        plan = GGUFPlan(ckpt, float_type)
        float_file = final if quant not in QUANT_FTYPES else out / f".{stem}-{float_type}.gguf"
        task = steps.start(f"Writing {float_type.upper()} GGUF", total=sum(t.nbytes for t in plan.tensors),
                           unit="bytes")
        plan.write(float_file, stem, ckpt.recipe.license if ckpt.recipe else None,
                   lambda tensor: task.advance(tensor.nbytes))
        task.finish()
        details: dict[str, object] = {"gguf_arch": plan.gguf_facts.gguf_arch.name.lower(), "tokenizer_model": plan.vocab.model,
                                      "tokenizer_pre": plan.vocab.pre, "tensors": len(plan.tensors)}
        if quant in QUANT_FTYPES:
            size = float_file.stat().st_size
            task = steps.start(f"Quantizing to {quant.upper()} with llama.cpp", total=size, unit="bytes")
            log = quantize(float_file, final, quant)
            float_file.unlink()
            task.finish()
            details["quantized_from"] = float_type
            if log.fallbacks:  # e.g. SmolLM2's 576-wide rows cannot hold 256-weight K-quant blocks
                details["quant_fallbacks"] = log.fallbacks
        return ConvertResult(model_file=final.name, details=details)

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        from slmkit.runtime.engines.llamacpp import LlamaCppRunner

        return LlamaCppRunner(artifact / manifest["model_file"], n_ctx=n_ctx, threads=threads, window_of=longrope_window)


def longrope_window(path: Path) -> int | None:
    """The original context of a GGUF with Phi-3-style long/short RoPE factors, else None.

    llama.cpp applies the long factors to every position when its context is larger than this
    window (`llama_model::get_rope_factors`: n_ctx_per_seq > n_ctx_orig_yarn), transformers when
    the sequence is longer (`_longrope_frequency_update`). An app running a context within the
    window gets the short factors, so parity runs prompts that fit in a context of that size.
    """
    from gguf import GGUFReader

    reader = GGUFReader(path)
    if not any(t.name == "rope_factors_long.weight" for t in reader.tensors):
        return None
    arch = reader.fields["general.architecture"].contents()
    field = reader.fields.get(f"{arch}.rope.scaling.original_context_length")
    return int(field.contents()) if field is not None else None


TARGET = GGUFTarget()
