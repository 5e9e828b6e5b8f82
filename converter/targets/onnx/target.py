"""ONNX target: an ONNX Runtime (Mobile) decoder with KV cache, loadable by onnxruntime-genai.

The folder holds `model.onnx`, its `.ort` form and reduced-build operator list, `genai_config.json`
and the tokenizer files beside them (where onnxruntime-genai reads them).
"""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.base import ConvertOptions, ConvertResult, SpecAttributes, refuse_options
from slmkit.converter.targets.onnx.architectures import GENAI_TYPES
from slmkit.converter.targets.onnx.spec import SPEC
from slmkit.converter.tokenizer_files import observed_special_tokens, state_tokenizer_config

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint
    from slmkit.runtime.engines.base import Runner
    from slmkit.runtime.progress import Steps

MODEL_FILE = "model.onnx"
OPSET = 20
EXTERNAL_DATA = "model.onnx.data"
DEFAULT_BLOCK_SIZE = 32


class OnnxTarget(SpecAttributes):
    spec = SPEC

    def check_supported(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> None:
        """Refuses, before any work, an architecture onnxruntime-genai has no model type for, options
        other than --block-size, a block size the quant cannot use, and layers the graph builder lacks.
        """
        from slmkit.converter.models.decoder import decoder_spec
        from slmkit.converter.targets.onnx.quantize import BLOCK_SIZES

        if ckpt.model_type not in GENAI_TYPES:
            raise SlmkitError(f"The ONNX target does not support {ckpt.model_type} yet: onnxruntime-genai has no "
                              "model type for it.", hint="Use --target gguf for this model.")
        refuse_options(self.name, options, "block_size")
        block = options.block_size
        if block is not None and quant not in ("int8", "int4", "int4-hqq"):
            raise SlmkitError(f"--block-size applies to int8/int4 only, not {quant}.", hint="Drop --block-size.")
        if block is not None and block not in BLOCK_SIZES:
            raise SlmkitError(f"--block-size {block} is not supported: onnxruntime's MatMulNBits quantizes blocks of "
                              f"{', '.join(map(str, BLOCK_SIZES))} weights.", hint="Use one of those (32 is the default).")
        decoder_spec(ckpt)  # refuses what the graph builder does not implement, before any writing

    def estimate_bytes(self, ckpt: Checkpoint, quant: str) -> int:
        n_params = sum(math.prod(ref.shape) for ref in ckpt.tensors())
        # model.onnx and model.ort side by side, plus the tokenizer.
        return int(2 * SPEC.quant(quant).stored_bytes(n_params) * 1.05) + (64 << 20)

    def estimate_memory(self, ckpt: Checkpoint, quant: str, options: ConvertOptions) -> int:
        """Building: the token table as stored plus its packed form, and one layer's weights widened
        and packed; then, below the .ort limit, ONNX Runtime holding the model to write and check
        the .ort (~4.2x its size). Measured: Gemma 3 1B int4 1.5 GB building, 3.31 GiB with the .ort
        (fresh-clone check 2026-12-04; 3.4x had estimated 2.96 GiB)."""
        from slmkit.converter.preflight import BASE_BYTES, WeightStats
        from slmkit.converter.targets.onnx import mobile

        stats = WeightStats.of(ckpt)
        building = BASE_BYTES + int(stats.table * 3.2) + 12 * stats.largest_layer_tensor
        size = SPEC.quant(quant).stored_bytes(stats.parameters)
        ort = BASE_BYTES + int(4.2 * size) if size < mobile.ORT_SIZE_LIMIT else 0
        return max(building, ort)

    def context_limit(self, artifact: Path, manifest: dict, engine: str) -> int | None:
        """onnxruntime-genai holds genai_config.json's context_length; a plain session any length."""
        config = artifact / "genai_config.json"
        if not engine.startswith("onnxruntime-genai") or not config.is_file():
            return None
        return int(json.loads(config.read_text(encoding="utf-8"))["model"]["context_length"])

    def engine_memory(self, artifact: Path, manifest: dict, engine: str, n_ctx: int, vocab: int) -> int:
        """ONNX Runtime's session (weights plus their prepacked copies) and the logits of a prompt."""
        from slmkit.converter.preflight import BASE_BYTES

        files = [artifact / MODEL_FILE, artifact / EXTERNAL_DATA]
        model = sum(f.stat().st_size for f in files if f.is_file())
        return BASE_BYTES + 2 * model + 3 * n_ctx * vocab * 4

    def convert(self, ckpt: Checkpoint, quant: str, out: Path, steps: Steps,
                options: ConvertOptions) -> ConvertResult:
        """model.onnx + model.onnx.data built from the weights (MatMulNBits for int4/int8), model.ort when
        under the .ort format's size limit (checked against model.onnx), and genai_config.json.
        """
        from slmkit.converter.models.decoder import DecoderWeights, decoder_spec
        from slmkit.converter.targets.onnx import genai, mobile
        from slmkit.converter.targets.onnx.builder import GraphBuilder
        from slmkit.converter.targets.onnx.decoder_graph import DecoderGraph
        from slmkit.converter.targets.onnx.quantize import quant_plan

        block_size = options.block_size or DEFAULT_BLOCK_SIZE
        spec = decoder_spec(ckpt)
        weights = DecoderWeights(ckpt, spec)
        task = steps.start(f"Building the ONNX graph ({quant}, weights streamed to {EXTERNAL_DATA})",
                           total=weights.nbytes, unit="bytes")
        model_path = out / MODEL_FILE
        builder = GraphBuilder(out / EXTERNAL_DATA, OPSET)
        try:
            report = DecoderGraph(builder, spec, weights, quant_plan(quant, block_size),
                                  on_weight=task.advance).build()
            builder.save(model_path, {"": OPSET, "com.microsoft": 1})
        finally:
            builder.close()
        task.finish()
        details: dict[str, object] = {
            "opset": OPSET, "graph": "built from the weights: explicit past/present KV cache, per-layer-type masks",
            "inputs": ["input_ids", "attention_mask", "position_ids", "past_key_values.%d.key",
                       "past_key_values.%d.value"],
            "outputs": ["logits", "present.%d.key", "present.%d.value"],
            "layers": spec.layers, "kv_heads": spec.kv_heads, "head_dim": spec.head_dim,
            "sliding_window": spec.sliding_window, "tied_embeddings": report.tied_embeddings,
            "external_data": EXTERNAL_DATA, **report.details,
        }
        size = _size(model_path) + _size(out / EXTERNAL_DATA)
        if size < mobile.ORT_SIZE_LIMIT:
            step = steps.start("Writing model.ort, checking it against model.onnx")
            ort_file, ops_config = mobile.write_ort(model_path, out)
            details["ort_file"], details["required_operators"] = ort_file, ops_config
            details["ort_matches_onnx"] = _check_ort_matches(model_path, out / ort_file, spec.vocab_size)
            details["mobile_usability"] = mobile.mobile_usability(model_path)
            step.finish()
        else:
            details["ort_format"] = (f"skipped: the .ort format holds at most {mobile.ORT_SIZE_LIMIT / 1024**3:.1f} GB; "
                                     "ship model.onnx + model.onnx.data")
        genai.write_genai_config(out, genai.genai_config(ckpt, spec, MODEL_FILE, GENAI_TYPES[ckpt.model_type]))
        # onnxruntime-extensions reads only the files: Gemma's implicit BOS and SmolLM2's
        # chat_template.jinja would otherwise be lost in onnxruntime-genai.
        state_tokenizer_config(out, observed_special_tokens(ckpt.path))
        return ConvertResult(model_file=MODEL_FILE, details=details)

    def runner(self, artifact: Path, manifest: dict, threads: int | None, n_ctx: int, engine: str) -> Runner:
        """`onnxruntime-genai` runs genai's whole loop (runtime/engines/genai.py), `onnxruntime` the graph
        in a plain session; the `-mobile` engines run model.ort. Raises SlmkitError when a -mobile engine
        is asked of an artifact without model.ort.
        """
        conversion = manifest.get("conversion", {})
        model_file = manifest["model_file"]
        if engine.endswith("-mobile"):
            if "ort_file" not in conversion:
                raise SlmkitError(f"{artifact} has no .ort file: {conversion.get('ort_format', 'not written')}.")
            model_file = conversion["ort_file"]
        if engine.startswith("onnxruntime-genai"):
            from slmkit.runtime.engines.genai import GenaiRunner

            return GenaiRunner(artifact, threads=threads, model_file=model_file, name=engine)
        from slmkit.converter.targets.onnx.runner import OrtRunner

        return OrtRunner(artifact, model_file, threads=threads, name=engine)


def _size(path: Path) -> int:
    return path.stat().st_size


def _check_ort_matches(onnx_file: Path, ort_file: Path, vocab_size: int) -> bool:
    """The .ort must compute exactly what the .onnx computes (prefill + one cached step)."""
    import numpy as np

    from slmkit.runtime.engines.onnxruntime import OrtSession

    ids = [min(i * 7 + 3, vocab_size - 1) for i in range(12)]
    # One session at a time: each holds the model's weights (and their prepacked copies).
    first = OrtSession(onnx_file, threads=None).greedy_logits(ids, 2)
    gc.collect()
    second = OrtSession(ort_file, threads=None).greedy_logits(ids, 2)
    same = all(np.array_equal(a, b) for a, b in zip(first, second))
    if not same:
        worst = max(float(np.abs(a - b).max()) for a, b in zip(first, second))
        raise SlmkitError(f"{ort_file.name} does not reproduce {onnx_file.name} exactly (max |dlogit| {worst:.3g}).",
                          hint="Report this with the model name; the .onnx file itself is fine.")
    return same


TARGET = OnnxTarget()
