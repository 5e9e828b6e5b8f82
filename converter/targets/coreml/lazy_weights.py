"""Weights the numpy MIL evaluator keeps narrow and widens to float32 only while an op reads them.

Two kinds, one interface (`rows`, `take`, `dense`), both giving exactly the float32 values of the
fp16 weight Core ML materializes:

- `HalfWeight`: an fp16 weight (a `const`, or a compressed op dequantized at load): 2 bytes per value.
- `BlockwiseWeight`: a `constexpr_blockwise_shift_scale` output kept as its integers, 1 byte per value
  plus one fp16 scale per block. Gemma 3 4B int4 holds 7.8 GB of weights as fp16 and 4.2 GB this
  way; dequantizing a row block costs ~1.5x widening the same block from fp16 (measured on a
  [10240, 2560] block, 2 cores: 53 ms against 36 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class LazyWeight(Protocol):
    shape: tuple[int, ...]

    @property
    def size(self) -> int: ...

    def rows(self, start: int, stop: int) -> Any:
        """float32 torch tensor of rows [start, stop) along axis 0."""

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float32 rows at `indices` along axis 0: shape indices.shape + shape[1:]."""

    def dense(self) -> Any:
        """The whole weight as a float32 torch tensor."""


@dataclass(frozen=True)
class HalfWeight:
    half: np.ndarray  # fp16

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.half.shape)

    @property
    def size(self) -> int:
        return int(self.half.size)

    def rows(self, start: int, stop: int) -> Any:
        import torch

        return torch.from_numpy(self.half[start:stop]).float()

    def take(self, indices: np.ndarray) -> np.ndarray:
        import torch

        return torch.from_numpy(np.take(self.half, indices, axis=0)).float().numpy()

    def dense(self) -> Any:
        import torch

        return torch.from_numpy(self.half).float()


@dataclass(frozen=True)
class BlockwiseWeight:
    """`constexpr_blockwise_shift_scale` (iOS 18) as stored: `levels` int8 [out, in] = data − offset,
    `scale` fp16 [out, in / block]. The value is fp16(levels × scale), what the op's own
    `decompress()` gives (fp16 data − offset is exact, then one rounded product), bit for bit."""

    levels: Any  # torch int8 [out, in]
    scale: Any  # torch fp16 [out, blocks, 1]

    @classmethod
    def from_op(cls, op: Any) -> BlockwiseWeight | None:
        """The op's weight kept compressed, or None where this layout does not apply (not rank 2,
        blocks across rows, or data − offset outside int8)."""
        import torch

        data, scale = op.data.val, op.scale.val
        offset = None if op.offset is None else op.offset.val
        if (data.ndim != 2 or scale.ndim != 2 or data.dtype not in (np.int8, np.uint8) or scale.dtype != np.float16
                or scale.shape[0] != data.shape[0] or data.shape[1] % scale.shape[1]):
            return None
        block = data.shape[1] // scale.shape[1]
        if offset is None:
            if data.dtype != np.int8:
                return None
            levels = np.array(data)  # the loaded program's array is released by the caller
        else:
            wide = data.reshape(data.shape[0], -1, block).astype(np.int16) - offset.astype(np.int16)[..., None]
            if wide.min(initial=0) < -128 or wide.max(initial=0) > 127:
                return None
            levels = wide.astype(np.int8).reshape(data.shape)
        return cls(torch.from_numpy(levels), torch.from_numpy(np.array(scale))[..., None])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels.shape)

    @property
    def size(self) -> int:
        return int(self.levels.numel())

    def _values(self, levels: Any, scale: Any) -> Any:
        import torch

        blocks = scale.shape[-2]
        half = torch.mul(levels.reshape(*levels.shape[:-1], blocks, -1), scale)  # int8 x fp16 -> fp16
        return half.reshape(levels.shape).float()

    def rows(self, start: int, stop: int) -> Any:
        return self._values(self.levels[start:stop], self.scale[start:stop])

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows `indices` dequantized to float32 (an embedding lookup), without widening the whole table."""
        import torch

        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        return self._values(self.levels[index], self.scale[index]).numpy()

    def dense(self) -> Any:
        return self.rows(0, self.shape[0])
