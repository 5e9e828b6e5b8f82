"""All-or-nothing outputs, including the signal path that cannot rely on exceptions unwinding."""

from pathlib import Path

import pytest

from slmkit.converter.errors import SlmkitError
from slmkit.converter.staging import _previous, abandon_active, staged_output


def test_replaces_output_only_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_output(out, force=True) as staging:
        (staging / "new.txt").write_text("new")
        assert (out / "old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]


def test_existing_output_needs_force(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(SlmkitError, match="already exists"):
        with staged_output(tmp_path / "out", force=False):
            pass


def test_abandon_removes_open_staging_and_restores_an_output_caught_mid_swap(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    context = staged_output(out, force=True)
    staging = context.__enter__()  # never exited: the signal handler os._exit()s
    (staging / "half.bin").write_bytes(b"x")
    out.rename(_previous(out))  # the signal lands between the two renames of the swap
    abandon_active()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (out / "old.txt").read_text() == "old"
    del context
