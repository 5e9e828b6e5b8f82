"""check_artifact's argument checks, before any artifact or model is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.parity.check import check_artifact


@pytest.mark.parametrize("steps", [0, -3])
def test_fewer_than_one_decode_step_is_refused(steps: int, tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="steps must be at least 1"):
        check_artifact(tmp_path, steps=steps)


def test_a_missing_artifact_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SlmkitError, match="is not a folder"):
        check_artifact(tmp_path / "nothing-here")
