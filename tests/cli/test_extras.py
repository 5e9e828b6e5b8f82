"""The extra check: installed modules pass, absent ones name the install command."""

from __future__ import annotations

import pytest

from slmkit.cli import extras
from slmkit.runtime.errors import SlmkitError


def test_installed_extra_passes() -> None:
    assert extras.missing_modules("convert") == []
    extras.require_extra("convert", "convert")


def test_missing_module_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRA_MODULES, "convert", ("torch", "no_such_module_slmkit"))
    with pytest.raises(SlmkitError) as error:
        extras.require_extra("convert", "parity")
    assert str(error.value) == ('`slmkit parity` needs the convert extra (no_such_module_slmkit not installed): '
                                'pip install "slmkit[convert]"')
