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
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmkit.converter.architectures import MULTIMODAL
from slmkit.converter.errors import SlmkitError
from slmkit.converter.targets.onnx.graph import name_matmul_weights

if TYPE_CHECKING:
    import onnx
    import torch

    from slmkit.converter.models.checkpoint import Checkpoint

OPSET = 20
PAST_NAME = "past_key_values.{layer}.{kind}"
PRESENT_NAME = "present.{layer}.{kind}"


@dataclass(frozen=True)
class DecoderShape:
    """What a runtime needs to know to allocate and feed the cache."""

    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    hidden_size: int
    attention_heads: int
    context_length: int
    sliding_window: int | None
    layer_types: tuple[str, ...]

    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "position_ids", *self.past_names()]

    def past_names(self) -> list[str]:
        return [PAST_NAME.format(layer=i, kind=k) for i in range(self.layers) for k in ("key", "value")]

    def output_names(self) -> list[str]:
        return ["logits", *(PRESENT_NAME.format(layer=i, kind=k) for i in range(self.layers) for k in ("key", "value"))]


def load_text_decoder(ckpt: Checkpoint) -> torch.nn.Module:
    """The decoder as a transformers CausalLM in fp32 eager attention (multimodal: text part only)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    text = dict(ckpt.text_config)
    config = AutoConfig.for_model(text.pop("model_type"), **text)
    layout = MULTIMODAL.get(ckpt.config.get("model_type", ""))
    key_mapping = None if layout is None else {f"^{re.escape(old)}": new for old, new in layout.rename_prefixes}
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a multimodal checkpoint's vision weights are left out on purpose
    try:
        model = AutoModelForCausalLM.from_pretrained(ckpt.path, config=config, dtype=torch.float32,
                                                     attn_implementation="eager", key_mapping=key_mapping)
    finally:
        hf_logging.set_verbosity(previous)
    return model.eval()


def decoder_shape(model: torch.nn.Module, ckpt: Checkpoint) -> DecoderShape:
    config = model.config
    layer_types = tuple(getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers)
    return DecoderShape(
        layers=config.num_hidden_layers,
        kv_heads=config.num_key_value_heads,
        head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        attention_heads=config.num_attention_heads,
        context_length=ckpt.recipe.context_length if ckpt.recipe else config.max_position_embeddings,
        sliding_window=getattr(config, "sliding_window", None) if "sliding_attention" in layer_types else None,
        layer_types=layer_types,
    )


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

    # transformers models that take one mask per layer type (Gemma 3, Qwen 2) read a dict.
    per_layer_type = getattr(model.config, "layer_types", None) is not None

    class ExplicitCacheDecoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, past):
            new, past_len = input_ids.shape[1], past[0].shape[2]
            total = past_len + new
            kv_slot = torch.arange(total, device=input_ids.device).view(1, total)
            q_slot = torch.arange(past_len, total, device=input_ids.device).view(new, 1)
            not_padding = attention_mask.bool().view(-1, 1, 1, total)
            lowest = torch.finfo(torch.float32).min

            def additive(allowed: torch.Tensor) -> torch.Tensor:
                return torch.where(allowed.view(1, 1, new, total) & not_padding, 0.0, lowest)

            causal = kv_slot <= q_slot
            masks: Any = additive(causal)
            if per_layer_type:
                masks = {"full_attention": masks}
                if shape.sliding_window:
                    masks["sliding_attention"] = additive(causal & (q_slot - kv_slot < shape.sliding_window))
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
                                        dynamic_shapes=dynamic_shapes, input_names=shape.input_names(),
                                        output_names=shape.output_names(), opset_version=OPSET, optimize=True,
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
