"""PyTorch text decoder -> ONNX graph with an explicit KV cache (past in, present out).

The graph has the interface onnxruntime-genai and hand-written ORT loops expect:
`input_ids`, `attention_mask` (2D, past + new), `position_ids`, `past_key_values.N.key/value`
-> `logits`, `present.N.key/value`, with dynamic batch, sequence and past lengths. The wrapper
builds the 4D attention masks itself (one per layer type, so Gemma 3's sliding layers get the
sliding window) instead of tracing transformers' mask builders.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.models.text_decoder import DecoderShape, attention_masks
from slmkit.converter.targets.onnx.graph import name_matmul_weights

if TYPE_CHECKING:
    import onnx
    import torch

OPSET = 20
PAST_NAME = "past_key_values.{layer}.{kind}"
PRESENT_NAME = "present.{layer}.{kind}"


def input_names(shape: DecoderShape) -> list[str]:
    return ["input_ids", "attention_mask", "position_ids", *past_names(shape)]


def past_names(shape: DecoderShape) -> list[str]:
    return [PAST_NAME.format(layer=i, kind=k) for i in range(shape.layers) for k in ("key", "value")]


def output_names(shape: DecoderShape) -> list[str]:
    return ["logits", *(PRESENT_NAME.format(layer=i, kind=k) for i in range(shape.layers) for k in ("key", "value"))]


def _wrapper(model: torch.nn.Module, shape: DecoderShape) -> torch.nn.Module:
    import torch
    from transformers.cache_utils import Cache, DynamicLayer

    class PastCache(Cache):
        """Layers pre-filled with the graph's past tensors; `update` concatenates the new keys."""

        def __init__(self, past: tuple[torch.Tensor, ...]) -> None:
            layers = []
            for keys, values in zip(past[0::2], past[1::2]):
                layer = DynamicLayer()
                layer.keys, layer.values, layer.is_initialized = keys, values, True
                layers.append(layer)
            super().__init__(layers=layers)

    class ExplicitCacheDecoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, past):
            masks = attention_masks(model, shape, past[0].shape[2], input_ids.shape[1], attention_mask,
                                    torch.finfo(torch.float32).min)
            out = self.model(input_ids=input_ids, attention_mask=masks, position_ids=position_ids,
                             cache=PastCache(past), use_cache=True)
            presents = [t for layer in out.cache.layers for t in (layer.keys, layer.values)]
            return (out.logits, *presents)

    return ExplicitCacheDecoder().eval()


def export_decoder(model: torch.nn.Module, shape: DecoderShape) -> onnx.ModelProto:
    """Export with dynamic batch/sequence/past lengths; per-node metadata stripped."""
    import torch
    from torch.export import Dim

    batch, sequence, past_len, total = Dim("batch"), Dim("sequence"), Dim("past_sequence"), Dim("total_sequence")
    example_past, example_new, example_batch = 3, 2, 2
    ids = torch.zeros((example_batch, example_new), dtype=torch.int64)
    mask = torch.ones((example_batch, example_past + example_new), dtype=torch.int64)
    positions = torch.arange(example_past, example_past + example_new).expand(example_batch, example_new)
    past = tuple(torch.zeros(example_batch, shape.kv_heads, example_past, shape.head_dim) for _ in range(2 * shape.layers))
    dynamic_shapes = {
        "input_ids": {0: batch, 1: sequence},
        "attention_mask": {0: batch, 1: total},
        "position_ids": {0: batch, 1: sequence},
        "past": tuple({0: batch, 2: past_len} for _ in range(2 * shape.layers)),  # one tuple, as the exporter wants
    }
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(_wrapper(model, shape), (ids, mask, positions, past), dynamo=True,
                                        dynamic_shapes=dynamic_shapes, input_names=input_names(shape),
                                        output_names=output_names(shape), opset_version=OPSET, optimize=True,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many error types; all mean the same to a user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SlmkitError(f"torch.onnx.export failed for {type(model).__name__}: {first_line}",
                          hint="Nothing was written. Report the model and this message.") from exc
    proto = program.model_proto
    strip_metadata(proto)
    name_matmul_weights(proto, {name: p.detach().numpy() for name, p in model.named_parameters()})
    return proto


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter warns about optional torchvision ops and axis renames; none concern the user."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def strip_metadata(model: onnx.ModelProto) -> None:
    """Drop per-node source locations and stack traces (a third of a small model's file)."""
    for graph in _graphs(model.graph):
        graph.doc_string = ""
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
        for value in [*graph.value_info, *graph.input, *graph.output]:
            del value.metadata_props[:]
        for tensor in graph.initializer:
            del tensor.metadata_props[:]
    del model.metadata_props[:]
    for function in model.functions:
        for node in function.node:
            node.doc_string = ""
            del node.metadata_props[:]


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g.node:
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)
