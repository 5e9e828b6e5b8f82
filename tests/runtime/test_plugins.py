"""One registry style: targets, tier backends and router methods are entry points (runtime/plugins.py)."""

from __future__ import annotations

from typing import get_args

import pytest

from slmkit.runtime import plugins
from slmkit.runtime.backends import GROUP as BACKENDS
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.router import GROUP as ROUTERS
from slmkit.runtime.spec import BackendName, RouterMethod


def test_every_name_the_spec_allows_is_registered_with_the_uniform_constructor() -> None:
    assert set(plugins.plugin_points(BACKENDS)) == set(get_args(BackendName))
    assert set(plugins.plugin_points(ROUTERS)) == set(get_args(RouterMethod))
    for name in get_args(BackendName):
        assert callable(plugins.load_plugin(BACKENDS, name, "backend").from_tier)
    for name in get_args(RouterMethod):
        assert callable(plugins.load_plugin(ROUTERS, name, "router method").from_spec)


def test_an_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(SlmkitError, match="Unknown backend 'mlx'") as error:
        plugins.load_plugin(BACKENDS, "mlx", "backend")
    assert "llama.cpp" in str(error.value) and "simulated" in str(error.value)


def test_an_empty_group_is_a_broken_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    plugins.plugin_points.cache_clear()
    try:
        with pytest.raises(SlmkitError, match="Nothing is installed in entry-point group slmkit.routers"):
            plugins.load_plugin(ROUTERS, "classifier", "router method")
    finally:
        plugins.plugin_points.cache_clear()
