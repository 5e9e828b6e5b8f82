"""Core ML target: a stateful `mlprogram` (.mlpackage) for iOS 18 / macOS 15, with parity on Linux.

The artifact folder holds `model.mlpackage` (one model for prefill and decode, KV cache in fp16
states), `tokenizer/` (tokenizer files with BOS/EOS stated and the chat template inlined, as
swift-transformers reads them) and the manifest. The package's metadata repeats what an app needs
(names, cache length, special tokens), so the `.mlpackage` alone is usable.
"""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.base import ConvertOptions, ConvertResult, SpecAttributes, refuse_options
from slmkit.converter.targets.coreml.spec import SPEC
from slmkit.converter.tokenizer_files import observed_special_tokens, state_tokenizer_config

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.runtime.engines.base import Runner
    from slmkit.runtime.progress import Steps

MODEL_FILE = "model.mlpackage"
DEFAULT_BLOCK_SIZE = 32
# Tokens the KV-cache states hold unless --cache-length says otherwise (what the recipes' RAM assumes).
DEFAULT_CACHE_LENGTH = 4096
MIN_STATEFUL_TARGET = "iOS18"  # MLState arrived with iOS 18 / macOS 15
CACHE_MULTIPLE = 32  # Core ML wants state lengths in multiples of 32 (coremltools #2631)
# What the building estimate missed at Gemma 3 1B int4: measured 2.71 GiB against 2.27 GiB
# estimated (fresh-clone check, 2026-12-04); preflight estimates must not fall below a measure.
BUILD_SLACK_BYTES = 600 * 1024**2


class CoremlTarget(SpecAttributes):
    spec = SPEC

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        """Refuses, before any work, what the program builder does not implement, a cache length or block
        size it cannot use, and deployment targets older than iOS 18 / macOS 15 (stateful programs).
        """
        from slmkit.converter.models.decoder import decoder_spec

        refuse_options(self.name, options, "block_size", "cache_length", "deployment_target")
        spec = decoder_spec(ckpt)  # refuses what the program builder does not implement
        state_length(spec.context_length, options)
        if options.block_size is not None and quant != "int4":
            raise SlmkitError(f"--block-size applies to coreml int4 only, not {quant}.", hint="Drop --block-size.")
        if options.block_size is not None and (options.block_size < 8 or options.block_size & (options.block_size - 1)):
            raise SlmkitError(f"--block-size {options.block_size} is not supported.",
                              hint="Use a power of two >= 8 (32 is the default).")
        check_deployment_target(options.deployment_target)

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        n_params = sum(math.prod(ref.shape) for ref in ckpt.tensors())
        # coremltools writes the fp16 package, then the compressed one, in its own temp folder.
        return int((2.0 * n_params + SPEC.quant(quant).stored_bytes(n_params)) * 1.05) + (64 << 20)

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, steps: Steps,
                options: ConvertOptions) -> ConvertResult:
        """model.mlpackage: fp16-safe residual scaling calibrated (every quant but fp32), the stateful ML
        program built from the weights (compressed as read), converted by coremltools and saved; the
        tokenizer files (copied into `out/tokenizer/` by convert) get a `tokenizer_config.json` rewritten
        to state BOS/EOS as the HF tokenizer adds them and the chat template.
        """
        from slmkit.converter.models.decoder import DecoderWeights, decoder_spec
        from slmkit.converter.targets.coreml.evaluator import quiet_coremltools
        from slmkit.converter.targets.coreml.fp16_safe import Fp16Range, calibrate
        from slmkit.converter.targets.coreml.program import DecoderProgram, StatefulLayout
        from slmkit.converter.targets.coreml.quantize import WeightCompressor

        block_size = options.block_size or DEFAULT_BLOCK_SIZE
        spec = decoder_spec(ckpt)
        cache = state_length(spec.context_length, options)
        layout = StatefulLayout(cache, spec.layers, spec.kv_heads, spec.head_dim, spec.vocab_size)
        fp16 = quant != "fp32"
        calibrating = steps.start("Calibrating the residual stream for fp16 (layers read one at a time)", transient=True)
        fp16_range = calibrate(ckpt) if fp16 else Fp16Range(0.0, 1)
        calibrating.finish()
        weights = DecoderWeights(ckpt, spec)
        task = steps.start(f"Building the ML program ({quant}, weights compressed as read)", total=weights.nbytes,
                           unit="bytes")
        compressor = WeightCompressor(quant, block_size)
        with quiet_coremltools():
            program = DecoderProgram(spec, weights, layout, compressor, fp16, fp16_range.scale,
                                     on_weight=task.advance).build()
            task.describe("Converting to a stateful ML program (coremltools)")
            mlmodel = program_to_mlmodel(program, layout, fp16, options.deployment_target or MIN_STATEFUL_TARGET)
            del program
            gc.collect()
            task.describe(f"Writing {MODEL_FILE}")
            special = observed_special_tokens(ckpt.path)
            describe(mlmodel, ckpt, quant, layout, special)
            mlmodel.save(str(out / MODEL_FILE))
        del mlmodel
        gc.collect()
        task.describe("Converted to Core ML")
        task.finish()
        state_tokenizer_config(out / SPEC.tokenizer_dir, special)
        details: dict[str, Any] = {
            "format": "mlprogram", "deployment_target": options.deployment_target or MIN_STATEFUL_TARGET,
            "graph": "built from the weights (MIL), stateful KV cache",
            "compute_precision": "fp32" if quant == "fp32" else "fp16", **layout.describe(),
            "tokenizer_dir": SPEC.tokenizer_dir, "layers": spec.layers, "parameters": weights.parameters,
            "sliding_window": spec.sliding_window,
            **fp16_range.describe(), "rope_tables": len(spec.ropes), **compressor.describe(),
        }
        return ConvertResult(model_file=MODEL_FILE, details=details)

    def estimate_memory(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> int:
        """The larger of fp16 calibration (token table as stored, one float32 layer read at a time)
        and building (the compressed program, the table as stored, coremltools' conversion copy,
        and `BUILD_SLACK_BYTES`). Measured 2026-12-04 (docs/scale.md): Gemma 3 1B int4 2.71 GiB
        (estimate now 2.86 GiB), Gemma 3 4B int4 5.78 GB (estimate now 7.26 GB)."""
        from slmkit.converter.preflight import BASE_BYTES, WeightStats

        stats = WeightStats.of(ckpt)
        calibration = BASE_BYTES + stats.stored_bytes - stats.layer_stored_bytes + 8 * stats.largest_layer_tensor if quant != "fp32" else 0
        program = SPEC.quant(quant).stored_bytes(stats.parameters)
        building = BASE_BYTES + BUILD_SLACK_BYTES + int(2 * program) + stats.table * 2
        return max(calibration, building)

    def context_limit(self, artifact: Path, manifest: dict, engine: str) -> int | None:
        """The KV-cache states hold `cache_length` tokens."""
        cache = manifest.get("conversion", {}).get("cache_length")
        return int(cache) if cache is not None else None

    def engine_memory(self, artifact: Path, manifest: dict, engine: str, n_ctx: int, vocab: int) -> int:
        """The evaluator: the program as loaded, its weights as the evaluator keeps them
        (`evaluator.weights_memory`), a prompt's logits and a prefill chunk's transients.
        Measured: Gemma 3 1B int4 7.6 GB including the reference phase before it; Gemma 3 4B int4
        6.5-7.1 GB in the evaluator phase (docs/scale.md)."""
        from slmkit.converter.preflight import BASE_BYTES
        from slmkit.converter.targets.coreml.evaluator import weights_memory
        from slmkit.runtime.engines.coreml import PREFILL_CHUNK

        package = artifact / manifest["model_file"]
        stored = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
        conversion = manifest.get("conversion", {})
        parameters = int(conversion.get("parameters") or stored)
        weights = weights_memory(parameters, "constexpr_blockwise_shift_scale" in conversion.get("compressed_ops", {}))
        return BASE_BYTES + stored + weights + 2 * n_ctx * vocab * 4 + 4 * PREFILL_CHUNK * vocab * 4

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        from slmkit.converter.targets.coreml.runner import CoremlRunner

        return CoremlRunner(artifact / manifest["model_file"], artifact / SPEC.tokenizer_dir, engine, threads)


def state_length(context_length: int, options: ConvertOptions) -> int:
    """The KV-cache state length a conversion uses: --cache-length checked by `cache_length_for`, or
    `default_cache_length`. Raises SlmkitError as they do."""
    return cache_length_for(context_length, options.cache_length or default_cache_length(context_length))


def default_cache_length(context_length: int) -> int:
    """The state length without --cache-length: DEFAULT_CACHE_LENGTH, or the model's context rounded down to a
    multiple of 32 when that is shorter (a context of 1000 tokens gets 992, not a refused 1024).

    Raises SlmkitError for a context shorter than 32 tokens (no state length fits it).
    """
    if context_length < CACHE_MULTIPLE:
        raise SlmkitError(f"The model's context of {context_length} tokens is shorter than the smallest Core ML "
                          f"state ({CACHE_MULTIPLE} tokens).", hint="Convert it to onnx or gguf instead.")
    return min(DEFAULT_CACHE_LENGTH, context_length // CACHE_MULTIPLE * CACHE_MULTIPLE)


def cache_length_for(context_length: int, requested: int) -> int:
    """The state length: the request rounded up to a multiple of 32, never past the model's context."""
    if requested < 1:
        raise SlmkitError(f"--cache-length must be positive, got {requested}.")
    rounded = -(-requested // CACHE_MULTIPLE) * CACHE_MULTIPLE
    if rounded > context_length:
        raise SlmkitError(f"--cache-length {requested} exceeds the model's context of {context_length} tokens.",
                          hint=f"Use at most {context_length // CACHE_MULTIPLE * CACHE_MULTIPLE}.")
    return rounded


def program_to_mlmodel(program: Any, layout: Any, fp16: bool, deployment_target: str) -> Any:
    """The MIL program (its states declared in it) as an in-memory `ct.models.MLModel` (not
    compiled here), with two independent flexible lengths: new tokens and past + new."""
    import coremltools as ct

    from slmkit.converter.targets.coreml.program import ATTENTION_MASK, INPUT_IDS

    try:
        return ct.convert(
            program,
            inputs=[ct.TensorType(INPUT_IDS, shape=(1, ct.RangeDim(1, layout.cache_length, default=1)), dtype=np.int32),
                    ct.TensorType(ATTENTION_MASK, shape=(1, ct.RangeDim(1, layout.cache_length, default=1)),
                                  dtype=np.int32)],
            minimum_deployment_target=getattr(ct.target, deployment_target),
            compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
            convert_to="mlprogram",
            skip_model_load=True,
        )
    except (NotImplementedError, RuntimeError, ValueError, TypeError, IndexError, AssertionError, KeyError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SlmkitError(f"coremltools could not convert the program: {first_line}",
                          hint="Nothing was written. Use --target gguf or --target onnx for this model, "
                               "and report the model and this message.") from exc


def check_deployment_target(name: str | None) -> None:
    """A stateful model needs iOS 18 / macOS 15 or later; refuse older targets before converting."""
    if name is None:
        return
    from slmkit.converter.targets.coreml.evaluator import quiet_coremltools

    with quiet_coremltools():
        import coremltools as ct
    known = {member: getattr(ct.target, member) for member in dir(ct.target) if member[0].isalpha()
             and isinstance(getattr(ct.target, member), ct.target)}
    if name not in known:
        raise SlmkitError(f"Unknown deployment target '{name}'.",
                          hint=f"Use one of: {', '.join(sorted(n for n in known if known[n] >= ct.target.iOS18))}.")
    if known[name] < ct.target.iOS18:
        raise SlmkitError(f"Deployment target {name} cannot run a stateful model: the KV cache lives in Core ML "
                          "states (MLState), which need iOS 18 / macOS 15 or later.",
                          hint="Use --deployment-target iOS18 (the default) or later.")


def describe(mlmodel: Any, ckpt: Checkpoint, quant: str, layout: Any, special: dict[str, Any]) -> None:
    """Metadata an app reads from the package itself (Xcode shows it too)."""
    from slmkit.converter.targets.coreml.program import ATTENTION_MASK, INPUT_IDS, LOGITS

    recipe = ckpt.recipe
    mlmodel.short_description = f"{recipe.name if recipe else ckpt.path.name} text decoder ({quant}), stateful KV cache"
    mlmodel.license = (recipe.license if recipe else None) or "see the source checkpoint"
    mlmodel.author = "converted by slmkit"
    mlmodel.input_description[INPUT_IDS] = "New token ids [1, n]"
    mlmodel.input_description[ATTENTION_MASK] = "Ones over past + new tokens [1, past + n]"
    mlmodel.output_description[LOGITS] = "Next-token logits for every new position [1, n, vocab]"
    metadata = {
        "co.huggingface.exporters.name": recipe.hf_repo if recipe else ckpt.path.name,
        "co.huggingface.exporters.task": "text-generation",
        "co.huggingface.exporters.architecture": ckpt.model_type,
        "slmkit.quant": quant,
        "slmkit.cache_length": str(layout.cache_length),
        "slmkit.context_length": str(ckpt.recipe.context_length if ckpt.recipe else layout.cache_length),
        "slmkit.tokenizer_dir": SPEC.tokenizer_dir,
        "slmkit.special_tokens": json.dumps(special),
    }
    mlmodel.user_defined_metadata.update(metadata)


TARGET = CoremlTarget()
