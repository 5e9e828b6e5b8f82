"""The reference: the original checkpoint's text decoder run by transformers, computing in float32.

Memory is bounded by the checkpoint, not by its float32 size: decoder layers keep the dtype they
are stored in (bf16 on the hub) and each layer is upcast to float32 for its own forward only, then
released. The token table and the output projection stay stored too: the embedding widens only
the rows a forward looks up, the projection widens the table a block of rows at a time. The final
norm and every buffer are float32, so the arithmetic is exactly that of a float32 model
(bf16 -> float32 is exact). At Gemma 3 4B that is 7.8 GB of bf16 weights instead of 15.5 GB in
float32. Multimodal checkpoints load their text decoder only: the vision tower is never read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slmkit.converter.errors import SlmkitError

if TYPE_CHECKING:
    import torch

    from slmkit.converter.models.checkpoint import Checkpoint


def load_reference_model(ckpt: Checkpoint, streamed: bool = False) -> torch.nn.Module:
    """The text decoder in eager attention, computing in float32; raises SlmkitError when the
    checkpoint misses a decoder weight.

    Layers, token table and output projection stay in their stored dtype and are upcast per
    forward; with `streamed`, layers are not held at all but read from the safetensors files at each
    forward (a few forwards in the memory of one layer: fp16 calibration during a conversion).
    Norms and buffers are float32 throughout.
    """
    import torch
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    text = dict(ckpt.text_config)
    config = AutoConfig.for_model(text.pop("model_type"), **text)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with init_empty_weights(include_buffers=False):  # buffers (RoPE, embedding scale) in float32
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(previous)
    parameters = dict(model.named_parameters())
    refs = {ref.name: ref for ref in ckpt.tensors() if ref.name in parameters}  # not a stored tied head
    tables = {f"{_module_name(model, module)}.weight" for module in (model.get_input_embeddings(),
                                                                      model.get_output_embeddings())}
    for ref in refs.values():
        if streamed and _in_layer(ref.name):
            continue
        tensor = ref.load()
        kept = _in_layer(ref.name) or ref.name in tables
        if not (kept and tensor.dtype in (torch.bfloat16, torch.float16)):
            tensor = tensor.to(torch.float32)
        set_module_tensor_to_device(model, ref.name, "cpu", value=tensor, dtype=tensor.dtype)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    missing = [name for name, p in model.named_parameters()
               if p.device.type == "meta" and not (streamed and name in refs and _in_layer(name))]
    if missing:
        raise SlmkitError(f"The checkpoint at {ckpt.path} has no weights for {', '.join(missing[:4])}"
                          f"{' ...' if len(missing) > 4 else ''}.", hint="It does not match its config.json.")
    prefix = _layers_prefix(model)
    for index, layer in enumerate(_decoder_layers(model)):
        if streamed:
            _load_in_forward(model, layer, f"{prefix}.{index}.", refs)
        else:
            _upcast_in_forward(layer)
    _widen_rows_in_forward(model.get_input_embeddings())
    head = model.get_output_embeddings()
    if head.weight.dtype != torch.float32:
        model.set_output_embeddings(blockwise_projection(head.weight, head.bias))
    return model.eval()


def _module_name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


# Rows of a low-precision table widened at once by BlockwiseProjection: 32 MB of float32 per block
# at Gemma 3 4B (hidden 2560); the projection's output is the logits themselves.
PROJECTION_BLOCK_ELEMENTS = 8 * 1024 * 1024


def blockwise_projection(weight: torch.nn.Parameter, bias: torch.Tensor | None) -> torch.nn.Module:
    """The output projection over a stored (bf16/fp16) table, computed in float32 one block of
    vocabulary rows at a time: logits [..., vocab] float32 from hidden [..., hidden] float32,
    without a float32 copy of the whole table (2.7 GB at Gemma 3 4B)."""
    import torch

    class BlockwiseProjection(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = weight  # the same Parameter as the token table when tied
            self.bias = bias

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            rows = max(1, PROJECTION_BLOCK_ELEMENTS // self.weight.shape[1])
            out = hidden.new_empty(*hidden.shape[:-1], self.weight.shape[0])
            for start in range(0, self.weight.shape[0], rows):
                block = self.weight[start:start + rows].to(torch.float32)
                bias = None if self.bias is None else self.bias[start:start + rows].to(torch.float32)
                out[..., start:start + rows] = torch.nn.functional.linear(hidden, block, bias)
            return out

    return BlockwiseProjection()


def _widen_rows_in_forward(embedding: torch.nn.Module) -> None:
    """Give a stored-dtype token table's forward a float32 table of just the rows it looks up (ids
    renumbered into it), so the module's own arithmetic (e.g. Gemma's sqrt(hidden) scale, applied in
    the weight's dtype) runs in float32 as in a float32 model."""
    import torch

    if embedding.weight.dtype == torch.float32:
        return
    stored: dict[str, Any] = {}

    def before(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        ids = args[0] if args else kwargs.pop("input")
        rows, renumbered = torch.unique(ids, return_inverse=True)
        stored.update(table=module.weight.data, padding_idx=module.padding_idx)
        module.weight.data = module.weight.data[rows].to(torch.float32)
        module.padding_idx = None  # a row index of the full table; it only affects gradients
        return (renumbered, *args[1:]), kwargs

    def after(module: Any, _args: tuple, _kwargs: dict, _output: Any) -> None:
        module.weight.data = stored.pop("table")
        module.padding_idx = stored.pop("padding_idx")

    embedding.register_forward_pre_hook(before, with_kwargs=True)
    embedding.register_forward_hook(after, with_kwargs=True)


def _in_layer(name: str) -> bool:
    return ".layers." in name


def _layers_prefix(model: torch.nn.Module) -> str:
    import torch

    name = next((n for n, m in model.named_modules() if n.endswith("layers") and isinstance(m, torch.nn.ModuleList)),
                None)
    if name is None:
        raise SlmkitError(f"{type(model).__name__} has no `layers` list slmkit knows.")
    return name


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.get_submodule(_layers_prefix(model)))


def _load_in_forward(model: torch.nn.Module, layer: torch.nn.Module, prefix: str, refs: dict[str, Any]) -> None:
    """Read `layer`'s weights (as float32) from disk before its forward; drop them after."""
    import torch
    from accelerate.utils import set_module_tensor_to_device

    names = [prefix + name for name, _ in layer.named_parameters()]

    def before(_module: Any, _args: Any) -> None:
        for name in names:
            set_module_tensor_to_device(model, name, "cpu", value=refs[name].load().to(torch.float32))

    def after(_module: Any, _args: Any, _output: Any) -> None:
        for name in names:
            set_module_tensor_to_device(model, name, "meta")

    layer.register_forward_pre_hook(before)
    layer.register_forward_hook(after)


def _upcast_in_forward(layer: torch.nn.Module) -> None:
    """Give `layer` float32 copies of its low-precision weights during its forward only."""
    import torch

    low = [(module, name) for module in layer.modules() for name, p in module.named_parameters(recurse=False)
           if p.dtype != torch.float32]
    if not low:
        return
    stored: dict[int, torch.Tensor] = {}

    def before(_module: Any, _args: Any) -> None:
        for module, name in low:
            param = getattr(module, name)
            stored[id(param)] = param.data
            param.data = param.data.to(torch.float32)

    def after(_module: Any, _args: Any, _output: Any) -> None:
        for module, name in low:
            param = getattr(module, name)
            param.data = stored.pop(id(param))

    layer.register_forward_pre_hook(before)
    layer.register_forward_hook(after)
