"""ONNX target: an ONNX Runtime (Mobile) decoder with KV cache, loadable by onnxruntime-genai.

The folder holds `model.onnx`, its `.ort` form and reduced-build operator list, `genai_config.json`
and the tokenizer files beside them (where onnxruntime-genai reads them).
"""

from __future__ import annotations

import gc
import math
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.base import ConvertOptions, ConvertResult, refuse_options
from slmkit.converter.tokenizer_files import observed_special_tokens, state_tokenizer_config

if TYPE_CHECKING:
    from rich.progress import Progress

    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.converter.parity.runner import Runner

MODEL_FILE = "model.onnx"
EXTERNAL_DATA = "model.onnx.data"
DEFAULT_BLOCK_SIZE = 32
_BYTES_PER_WEIGHT = {"fp32": 4.0, "fp16": 2.0, "int8": 1.13, "int4": 0.75, "int4-hqq": 0.8}
# Protobuf cannot serialize a model over 2 GB: larger weights go to one external data file.
_INLINE_LIMIT = 1800 * 1024**2


class OnnxTarget:
    name = "onnx"
    quants = ("fp32", "fp16", "int8", "int4", "int4-hqq")
    default_quant = "int4"
    tokenizer_dir = "."  # onnxruntime-genai reads tokenizer.json & co. beside genai_config.json
    # "-mobile" engines run the .ort file instead of model.onnx.
    engines = ("onnxruntime-genai", "onnxruntime", "onnxruntime-mobile", "onnxruntime-genai-mobile")

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        arch = ckpt.architecture
        if arch.trace_unsupported or arch.genai_type is None:
            raise SlmkitError(f"The ONNX target does not support {arch.model_type} yet: {arch.trace_unsupported}.",
                              hint="Use --target gguf for this model.")
        refuse_options(self.name, options, "block_size")
        block = options.block_size
        if block is not None and quant not in ("int8", "int4", "int4-hqq"):
            raise SlmkitError(f"--block-size applies to int8/int4 only, not {quant}.", hint="Drop --block-size.")
        if block is not None and (block < 16 or block & (block - 1)):
            raise SlmkitError(f"--block-size {block} is not supported.",
                              hint="Use a power of two >= 16 (32 is the default).")

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        n_params = sum(math.prod(ref.shape) for ref in ckpt.tensors())
        # model.onnx and model.ort side by side, plus the tokenizer.
        return int(2 * n_params * _BYTES_PER_WEIGHT[quant] * 1.05) + (64 << 20)

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, progress: Progress,
                options: ConvertOptions) -> ConvertResult:
        from slmkit.converter.targets.onnx import genai, mobile
        from slmkit.converter.models.text_decoder import decoder_shape, load_text_decoder
        from slmkit.converter.targets.onnx.export import export_decoder, input_names
        from slmkit.converter.targets.onnx.quantize import quantize

        block_size = options.block_size or DEFAULT_BLOCK_SIZE
        steps = _Steps(progress)
        steps.begin("Loading the PyTorch decoder")
        model = load_text_decoder(ckpt)
        shape = decoder_shape(model, ckpt)
        steps.begin("Exporting the ONNX graph (torch.export)", done_bytes=_checkpoint_bytes(ckpt))
        proto = export_decoder(model, shape)
        del model
        gc.collect()
        steps.begin(f"Quantizing to {quant}", done_bytes=proto.ByteSize())
        report = quantize(proto, quant, block_size)
        steps.begin("Writing model.onnx", done_bytes=proto.ByteSize())
        model_path = out / MODEL_FILE
        external = _save(proto, model_path)
        del proto
        gc.collect()
        details: dict[str, object] = {
            "opset": _opset(model_path), "graph": "explicit past/present KV cache, per-layer-type attention masks",
            "inputs": input_names(shape)[:3] + ["past_key_values.%d.key", "past_key_values.%d.value"],
            "outputs": ["logits", "present.%d.key", "present.%d.value"],
            "layers": shape.layers, "kv_heads": shape.kv_heads, "head_dim": shape.head_dim,
            "sliding_window": shape.sliding_window, "tied_embeddings": report.tied_embeddings, **report.details,
        }
        if external:
            steps.finish(done_bytes=_size(model_path) + _size(out / EXTERNAL_DATA))
            details["external_data"] = EXTERNAL_DATA
            details["ort_format"] = "skipped: the .ort format holds at most 2 GB; ship model.onnx + model.onnx.data"
        else:
            steps.begin("Writing model.ort, checking it against model.onnx", done_bytes=_size(model_path))
            ort_file, ops_config = mobile.write_ort(model_path, out)
            details["ort_file"], details["required_operators"] = ort_file, ops_config
            details["ort_matches_onnx"] = _check_ort_matches(model_path, out / ort_file, shape)
            steps.finish(done_bytes=_size(out / ort_file))
        details["mobile_usability"] = mobile.mobile_usability(model_path)
        genai.write_genai_config(out, genai.genai_config(ckpt, shape, MODEL_FILE, ckpt.architecture.genai_type or ""))
        # onnxruntime-extensions reads only the files: Gemma's implicit BOS and SmolLM2's
        # chat_template.jinja would otherwise be lost in onnxruntime-genai.
        state_tokenizer_config(out, observed_special_tokens(ckpt.path))
        return ConvertResult(model_file=MODEL_FILE, details=details)

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        conversion = manifest.get("conversion", {})
        model_file = manifest["model_file"]
        if engine.endswith("-mobile"):
            if "ort_file" not in conversion:
                raise SlmkitError(f"{artifact} has no .ort file: {conversion.get('ort_format', 'not written')}.")
            model_file = conversion["ort_file"]
        if engine.startswith("onnxruntime-genai"):
            from slmkit.converter.parity.genai_runner import GenaiRunner

            return GenaiRunner(artifact, threads=threads, model_file=model_file, name=engine)
        from slmkit.converter.parity.ort_runner import OrtRunner

        return OrtRunner(artifact, model_file, threads=threads, name=engine)


class _Steps:
    """One progress line per stage; each shows the bytes it produced once done."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.current: int | None = None

    def begin(self, description: str, done_bytes: int | None = None) -> None:
        self.finish(done_bytes)
        self.current = self.progress.add_task(description, total=None)

    def finish(self, done_bytes: int | None = None) -> None:
        if self.current is not None:
            self.progress.update(self.current, total=done_bytes or 1, completed=done_bytes or 1)
            self.current = None


def _size(path: Path) -> int:
    return path.stat().st_size


def _checkpoint_bytes(ckpt: Checkpoint) -> int:
    return sum(_size(f) for f in ckpt.safetensors_files())


def _save(proto, path: Path) -> bool:
    """Write the model; returns whether the weights went to an external data file."""
    import onnx

    external = proto.ByteSize() > _INLINE_LIMIT
    if external:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=EXTERNAL_DATA, size_threshold=1024)
    else:
        onnx.save_model(proto, path)
    return external


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(path, load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _check_ort_matches(onnx_file: Path, ort_file: Path, shape) -> bool:
    """The .ort must compute exactly what the .onnx computes (prefill + one cached step)."""
    from slmkit.converter.parity.ort_runner import OrtSession

    import numpy as np

    reference, mobile = OrtSession(onnx_file, threads=None), OrtSession(ort_file, threads=None)
    ids = [min(i * 7 + 3, shape.vocab_size - 1) for i in range(12)]
    first, second = reference.greedy_logits(ids, 2), mobile.greedy_logits(ids, 2)
    same = all(np.array_equal(a, b) for a, b in zip(first, second))
    if not same:
        worst = max(float(np.abs(a - b).max()) for a, b in zip(first, second))
        raise SlmkitError(f"{ort_file.name} does not reproduce {onnx_file.name} exactly (max |dlogit| {worst:.3g}).",
                          hint="Report this with the model name; the .onnx file itself is fine.")
    return same


TARGET = OnnxTarget()
