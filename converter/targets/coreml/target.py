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
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.base import ConvertOptions, ConvertResult, refuse_options
from slmkit.converter.tokenizer_files import observed_special_tokens, state_tokenizer_config

if TYPE_CHECKING:
    from rich.progress import Progress

    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.converter.parity.runner import Runner

MODEL_FILE = "model.mlpackage"
TOKENIZER_DIR = "tokenizer"
DEFAULT_BLOCK_SIZE = 32
# Tokens the KV-cache states hold unless --cache-length says otherwise (what the recipes' RAM assumes).
DEFAULT_CACHE_LENGTH = 4096
MIN_STATEFUL_TARGET = "iOS18"  # MLState arrived with iOS 18 / macOS 15
_BYTES_PER_WEIGHT = {"fp32": 4.0, "fp16": 2.0, "int8": 1.05, "int4": 0.6, "palettize4": 0.55}
EVALUATOR, EVALUATOR_FP32, COREML = "coreml-evaluator", "coreml-evaluator-fp32", "coreml"


class CoremlTarget:
    name = "coreml"
    quants = ("fp16", "int8", "int4", "palettize4", "fp32")
    default_quant = "int4"
    tokenizer_dir = TOKENIZER_DIR
    # The numpy evaluator (device-like fp16 rounding, or exact fp32) everywhere; real Core ML on macOS.
    engines = (COREML, EVALUATOR, EVALUATOR_FP32) if platform.system() == "Darwin" else (EVALUATOR, EVALUATOR_FP32, COREML)

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        refuse_options(self.name, options, "block_size", "cache_length", "deployment_target")
        arch = ckpt.architecture
        if arch.trace_unsupported:
            raise SlmkitError(f"The Core ML target does not support {arch.model_type} yet: {arch.trace_unsupported}.",
                              hint="Use --target gguf for this model.")
        if options.block_size is not None and quant != "int4":
            raise SlmkitError(f"--block-size applies to coreml int4 only, not {quant}.", hint="Drop --block-size.")
        if options.block_size is not None and (options.block_size < 8 or options.block_size & (options.block_size - 1)):
            raise SlmkitError(f"--block-size {options.block_size} is not supported.",
                              hint="Use a power of two >= 8 (32 is the default).")
        check_deployment_target(options.deployment_target)

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        n_params = sum(math.prod(ref.shape) for ref in ckpt.tensors())
        # coremltools writes the fp16 package, then the compressed one, in its own temp folder.
        return int(n_params * (2.0 + _BYTES_PER_WEIGHT[quant]) * 1.05) + (64 << 20)

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, progress: Progress,
                options: ConvertOptions) -> ConvertResult:
        from slmkit.converter.models.text_decoder import decoder_shape, load_text_decoder
        from slmkit.converter.targets.coreml.evaluator import quiet_coremltools
        from slmkit.converter.targets.coreml.export import StatefulLayout, cache_length_for, convert_stateful
        from slmkit.converter.targets.coreml.fp16_safe import make_fp16_safe, rope_tables
        from slmkit.converter.targets.coreml.quantize import compress

        block_size = options.block_size or DEFAULT_BLOCK_SIZE
        task = progress.add_task("Loading the PyTorch decoder", total=None)
        model = load_text_decoder(ckpt)
        shape = decoder_shape(model, ckpt)
        cache = cache_length_for(shape, options.cache_length or min(DEFAULT_CACHE_LENGTH, shape.context_length))
        layout = StatefulLayout(cache, shape.layers, shape.kv_heads, shape.head_dim, shape.vocab_size)
        fp16 = quant != "fp32"
        progress.update(task, description="Calibrating the residual stream for fp16" if fp16 else "Rewriting norms")
        fp16_range = make_fp16_safe(model, ckpt.architecture, ckpt.path if fp16 else None)
        tables = rope_tables(model, cache)
        progress.update(task, description="Tracing and converting to a stateful ML program (coremltools)")
        with quiet_coremltools():
            mlmodel = convert_stateful(model, shape, layout, fp16=fp16,
                                       deployment_target=options.deployment_target or MIN_STATEFUL_TARGET)
            del model
            gc.collect()
            progress.update(task, description=f"Compressing weights to {quant}")
            mlmodel, weights = compress(mlmodel, quant, block_size)
            progress.update(task, description=f"Writing {MODEL_FILE}")
            special = observed_special_tokens(ckpt.path)
            describe(mlmodel, ckpt, quant, layout, special)
            mlmodel.save(str(out / MODEL_FILE))
        del mlmodel
        gc.collect()
        progress.update(task, total=1, completed=1, description="Converted to Core ML")
        state_tokenizer_config(out / TOKENIZER_DIR, special)
        details: dict[str, Any] = {
            "format": "mlprogram", "deployment_target": options.deployment_target or MIN_STATEFUL_TARGET,
            "compute_precision": "fp32" if quant == "fp32" else "fp16", **layout.describe(),
            "tokenizer_dir": TOKENIZER_DIR, "layers": shape.layers, "sliding_window": shape.sliding_window,
            **fp16_range.describe(), "rope_tables": tables, **weights,
        }
        return ConvertResult(model_file=MODEL_FILE, details=details)

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        from slmkit.converter.parity.coreml_runner import CoremlRunner

        cache = manifest.get("conversion", {}).get("cache_length")
        if cache is not None and n_ctx > cache:
            raise SlmkitError(f"Parity needs {n_ctx} tokens but {artifact.name}'s cache holds {cache}.",
                              hint="Use fewer --steps, or convert with a larger --cache-length.")
        return CoremlRunner(artifact / manifest["model_file"], artifact / TOKENIZER_DIR, engine, threads)


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
    from slmkit.converter.targets.coreml.export import ATTENTION_MASK, INPUT_IDS, LOGITS

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
        "slmkit.tokenizer_dir": TOKENIZER_DIR,
        "slmkit.special_tokens": json.dumps(special),
    }
    mlmodel.user_defined_metadata.update(metadata)


TARGET = CoremlTarget()
