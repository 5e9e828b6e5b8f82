"""Memory a long job will need, checked before it starts.

A conversion or parity run that cannot fit is refused up front with the numbers and a way out
(one line, exit 1, nothing written) instead of being killed by the kernel halfway. Each target
estimates its own peak (`Target.estimate_memory`, `Target.engine_memory`) from the checkpoint's
shapes with coefficients measured on the real-shape runs in docs/scale.md; the estimates aim
a little high. Disk is checked the same way (converter/staging.py `require_free_space`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slmkit.converter.errors import SlmkitError
from slmkit.converter.staging import GB

if TYPE_CHECKING:
    from slmkit.converter.models.checkpoint import Checkpoint

# Python with torch, transformers and a target's libraries imported, before any weight is read
# (measured: 0.45-0.6 GB RSS).
BASE_BYTES = 600 * 1024**2


@dataclass(frozen=True)
class WeightStats:
    """What memory estimates need to know about a checkpoint's text decoder (read from headers)."""

    parameters: int
    stored_bytes: int  # the decoder's weights as stored (bf16 on the hub)
    layer_parameters: int
    layer_stored_bytes: int  # of which the decoder layers
    largest: int  # elements of the largest tensor (the token table, usually)
    largest_layer_tensor: int  # elements of the largest tensor inside a layer
    table: int  # elements of the token table (vocab x hidden)

    @classmethod
    def of(cls, ckpt: Checkpoint) -> WeightStats:
        """Parameter counts and stored bytes of the checkpoint from its safetensors headers (no weights
        read): all, decoder layers only, the largest tensor and the token table.
        """
        refs = ckpt.tensors()
        sizes = [math.prod(ref.shape) for ref in refs]
        in_layers = [(ref, n) for ref, n in zip(refs, sizes) if ".layers." in ref.name]
        table = next((n for ref, n in zip(refs, sizes) if ref.name == "model.embed_tokens.weight"), max(sizes))
        return cls(parameters=sum(sizes), stored_bytes=sum(ref.nbytes for ref in refs),
                   layer_parameters=sum(n for _, n in in_layers),
                   layer_stored_bytes=sum(ref.nbytes for ref, _ in in_layers), largest=max(sizes),
                   largest_layer_tensor=max((n for _, n in in_layers), default=0), table=table)


def available_memory() -> int:
    """Bytes the kernel can give this process without swapping (MemAvailable)."""
    import psutil

    return int(psutil.virtual_memory().available)


def require_memory(needed: int, what: str, hint: str) -> None:
    """Refuse (SlmkitError) when `needed` bytes exceed the memory available now."""
    available = available_memory()
    if needed > available:
        raise SlmkitError(f"Not enough memory for {what}: it needs about {needed / GB:.1f} GB, "
                          f"{available / GB:.1f} GB are available.", hint=hint)


def reference_memory(stats: WeightStats, positions: int, vocab: int, layers: int) -> int:
    """Peak of the parity reference (converter/models/reference.py): the weights as stored (norms
    widened, too small to count), one layer widened at a time, and a prompt's logits (model output,
    copy, file write)."""
    one_layer = stats.layer_parameters * 4 // max(layers, 1)
    return BASE_BYTES + stats.stored_bytes + one_layer + 3 * positions * vocab * 4


def parity_disk(positions: int, prompts: int, steps: int, vocab: int) -> int:
    """Bytes of the reference logits kept on disk during a parity run."""
    return (positions + prompts * steps) * vocab * 4
