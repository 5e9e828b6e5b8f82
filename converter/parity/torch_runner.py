"""The reference: the original checkpoint's text decoder run by transformers, computing in float32.

Memory is bounded by the checkpoint, not by its float32 size: decoder layers keep the dtype they
are stored in (bf16 on the hub) and each layer is upcast to float32 for its own forward only, then
released. The token table, output projection, final norm and every buffer are float32 throughout,
so the arithmetic is exactly that of a float32 model (bf16 -> float32 is exact). At Gemma 3 4B
that is 6.4 GB of bf16 layers + 2.7 GB of float32 table instead of 15.5 GB in float32.
Multimodal checkpoints load their text decoder only: the vision tower is never read.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np

from slmkit.converter.errors import SlmkitError
from slmkit.converter.parity.hf_tokenizer import HfTokenized, load_tokenizer
from slmkit.converter.parity.runner import Decode

if TYPE_CHECKING:
    import torch

    from slmkit.converter.models.checkpoint import Checkpoint


def load_reference_model(ckpt: Checkpoint, streamed: bool = False) -> torch.nn.Module:
    """The text decoder in eager attention, computing in float32; raises SlmkitError when the
    checkpoint misses a decoder weight.

    Layers stay in their stored dtype and are upcast per forward; with `streamed`, they are not
    held at all but read from the safetensors files at each forward (a few forwards in the memory
    of one layer: fp16 calibration during a conversion). Everything else is float32 throughout.
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
    for ref in refs.values():
        if streamed and _in_layer(ref.name):
            continue
        tensor = ref.load()
        if not (_in_layer(ref.name) and tensor.dtype in (torch.bfloat16, torch.float16)):
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
    return model.eval()


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


class TorchRunner(HfTokenized):
    """Tokenizes at once; `load()` reads the model (after the caller checked it fits)."""

    name = "torch"

    def __init__(self, ckpt: Checkpoint, threads: int | None = None) -> None:
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # slmkit shows its own progress
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.ckpt = ckpt
        self.tokenizer = load_tokenizer(ckpt.path)
        self.model: torch.nn.Module | None = None

    def load(self) -> None:
        self.model = load_reference_model(self.ckpt)

    def greedy(self, ids: list[int], steps: int) -> Decode:
        torch = self._torch
        if self.model is None:
            raise SlmkitError("The reference model is not loaded (TorchRunner.load).")
        tokens: list[int] = []
        rows: list[np.ndarray] = []
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids]), use_cache=True)
            prefill = out.logits[0].float().numpy()
            for _ in range(steps):
                row = out.logits[0, -1].float().numpy().copy()
                rows.append(row)
                token = int(row.argmax())
                tokens.append(token)
                out = self.model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
        return Decode(prefill, tokens, np.stack(rows))

    def close(self) -> None:
        """Release the model (the tokenizer stays usable): the artifact's engine loads next."""
        self.model = None
        gc.collect()
        release_freed_memory()


def release_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise: at Gemma 3 1B, 4 GB of a
    released reference stayed in the process while the artifact's engine loaded)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
