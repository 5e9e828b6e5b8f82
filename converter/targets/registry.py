"""The target registry: `TargetSpec`s from the `slmkit.targets` entry-point group (runtime/plugins.py:
ours are declared in pyproject.toml like any plug-in's), and their implementations imported on first use."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from slmkit.converter.targets.spec import TargetSpec
from slmkit.runtime.errors import SlmkitError
from slmkit.runtime.plugins import plugin_points

if TYPE_CHECKING:
    from slmkit.converter.targets.base import Target

GROUP = "slmkit.targets"


@cache
def target_specs() -> dict[str, TargetSpec]:
    """Every installed target by name (light: spec modules import no conversion code).

    Raises: SlmkitError when an entry point does not name a TargetSpec of its own name, or when
    none is installed (a broken install).
    """
    specs: dict[str, TargetSpec] = {}
    for point in plugin_points(GROUP).values():
        spec = point.load()
        if not isinstance(spec, TargetSpec) or spec.name != point.name:
            raise SlmkitError(f"Entry point {point.name!r} in group {GROUP} ({point.value}) is not a TargetSpec "
                              f"named {point.name!r}.")
        specs[spec.name] = spec
    # ours first, in the order the docs present them, then plug-ins by name
    order = {name: i for i, name in enumerate(("gguf", "onnx", "coreml"))}
    return dict(sorted(specs.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def get_target_spec(name: str) -> TargetSpec:
    """Raises: SlmkitError listing the installed targets when `name` is not one."""
    specs = target_specs()
    if name not in specs:
        raise SlmkitError(f"Unknown target '{name}'.", hint=f"Available targets: {', '.join(specs)}.")
    return specs[name]


def get_target(name: str) -> Target:
    """The target's implementation (imports its conversion code)."""
    module, attribute = get_target_spec(name).implementation.split(":")
    return getattr(importlib.import_module(module), attribute)


def quant_help() -> str:
    """`--quant` help: every target's quantizations with their stored bits per weight, from the registry
    (e.g. "gguf: f32 (32), ..., q4_k_m (4.85)")."""
    return "; ".join(f"{spec.name}: {', '.join(f'{q.name} ({q.bits_per_weight:g})' for q in spec.quants)}"
                     for spec in target_specs().values())


def target_help() -> str:
    """`--target` help: every target's one-line summary."""
    return " | ".join(spec.summary for spec in target_specs().values())


def engine_help() -> str:
    """`parity --engine` help: every target's engines, the default first."""
    return "; ".join(f"{spec.name}: {' '.join(spec.engines)}" for spec in target_specs().values())
