"""The stored reference is read back exactly, a chunk of rows at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slmkit.converter.parity.coreml_runner import _exact_in_half
from slmkit.converter.parity.run import NpyRows


def test_rows_read_on_demand_equal_the_saved_array(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(37, 11)).astype(np.float32)
    np.save(tmp_path / "a.npy", values)
    rows = NpyRows(tmp_path / "a.npy")
    assert rows.shape == (37, 11) and rows.dtype == np.float32
    assert np.array_equal(rows[5:19], values[5:19]) and np.array_equal(rows[30:99], values[30:])
    assert rows[40:50].shape == (0, 11)
    with pytest.raises(IndexError):
        rows[::2]


def test_a_3d_or_fortran_array_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        NpyRows(tmp_path / "b.npy")


def test_fp16_is_used_only_when_it_holds_the_logits_exactly() -> None:
    half_values = np.array([[1.5, -np.inf, 65504.0, np.nan]], dtype=np.float32)
    assert _exact_in_half(half_values)
    assert not _exact_in_half(np.array([[1.0001]], dtype=np.float32))
