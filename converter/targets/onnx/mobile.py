"""ONNX Runtime Mobile forms: the `.ort` file, its operator list, and which mobile EPs can run it."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from slmkit.converter.errors import SlmkitError

# Execution providers the usability checker knows, with the op-support table it reads for each.
_MOBILE_EPS = {
    "NNAPI": None,
    "CoreML-NeuralNetwork": "coreml_supported_neuralnetwork_ops.md",
    "CoreML-MLProgram": "coreml_supported_mlprogram_ops.md",
}
ORT_SIZE_LIMIT = 2 * 1024**3  # flatbuffers cannot hold more; such models ship as .onnx + external data


def write_ort(onnx_file: Path, out: Path) -> tuple[str, str]:
    """`.ort` (Fixed optimizations, arm target) and the reduced-build operator config, next to the model."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tempfile.TemporaryDirectory(dir=out) as tmp, _quiet():
        try:
            convert_onnx_models_to_ort(onnx_file, output_dir=Path(tmp), optimization_styles=[OptimizationStyle.Fixed],
                                       target_platform="arm")
        except Exception as exc:  # ORT's converter raises RuntimeError/Fail with the session's message
            raise SlmkitError(f"ONNX Runtime could not convert {onnx_file.name} to the .ort format: {exc}") from None
        produced = {p.suffix: p for p in Path(tmp).iterdir()}
        ort_file = out / f"{onnx_file.stem}.ort"
        config_file = out / f"{onnx_file.stem}.required_operators.config"
        shutil.move(produced[".ort"], ort_file)
        shutil.move(produced[".config"], config_file)
    return ort_file.name, config_file.name


def mobile_usability(onnx_file: Path) -> dict[str, Any]:
    """Share of graph nodes each mobile EP could take, as ORT's own usability checker estimates it.

    Decoders keep dynamic sequence lengths, so coverage is reported both as is and assuming the
    shapes were made fixed; the CPU EP always runs the whole graph.
    """
    import onnx
    from onnxruntime.tools.mobile_helpers import usability_checker

    with _quiet():
        # The checker reads ops and shapes only: the weights stay in model.onnx.data (ORT's own
        # ModelProtoWithShapeInfo would load them, 4.5 GB at Gemma 3 1B int4).
        graph_only = onnx.load(onnx_file, load_external_data=False)
        model = onnx.shape_inference.infer_shapes(graph_only, strict_mode=True)
        verdict: dict[str, Any] = {"CPU": {"coverage": 1.0, "suitability": "YES"}}
        for ep, table in _MOBILE_EPS.items():
            entry: dict[str, Any] = {}
            for label, fixed in (("as_exported", True), ("with_fixed_shapes", False)):
                if table is None:
                    info = usability_checker.check_nnapi_partitions(model, fixed)
                else:
                    info = usability_checker.check_coreml_partitions(model, fixed, table)
                entry[label] = {
                    "nodes": info.num_nodes,
                    "supported_nodes": info.num_supported_nodes,
                    "coverage": round(info.num_supported_nodes / max(info.num_nodes, 1), 3),
                    "partitions": info.num_partitions,
                    "suitability": info.suitability().name,
                }
            entry["unsupported_ops"] = sorted(info.unsupported_ops)
            verdict[ep] = entry
    return verdict


@contextlib.contextmanager
def _quiet():
    """ORT's tools print and log progress lines; slmkit shows its own progress."""
    loggers = [logging.getLogger(name) for name in ("", "ort_format_model", "ort_format_model.utils", "usability_checker")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
