"""One registry style for everything slmkit looks up by name: an entry-point group declared in
pyproject.toml (ours like any third party's, as pytest and ONNX Runtime's execution providers do),
each entry imported only when that name is used.

| group             | names                                  | an entry names                                 |
|-------------------|----------------------------------------|------------------------------------------------|
| `slmkit.targets`  | `slmkit convert --target`              | a `TargetSpec` (converter/targets/registry.py) |
| `slmkit.backends` | a routing.json tier's `backend`        | a class with `from_tier(tier, base_dir)`       |
| `slmkit.routers`  | a routing.json router's `method`       | a class with `from_spec(spec, base_dir, backend)` |

The spec's own schema (runtime/spec.py) still fixes which backend and router names a routing.json
may use: the Kotlin and Swift ports mirror that list, so a new name is a spec change, not only a plug-in.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from slmkit.runtime.errors import SlmkitError


@cache
def plugin_points(group: str) -> dict[str, EntryPoint]:
    """Every entry point of `group` by name, sorted by name.

    Raises: SlmkitError when the group is empty (a broken install: ours are always declared).
    """
    points = {point.name: point for point in sorted(entry_points(group=group), key=lambda p: p.name)}
    if not points:
        raise SlmkitError(f"Nothing is installed in entry-point group {group}.",
                          hint="Reinstall slmkit (pip install -e . in a checkout).")
    return points


def load_plugin(group: str, name: str, kind: str) -> Any:
    """The object `name` in `group` (imports its module). `kind` names it in the error.

    Raises: SlmkitError listing the installed names when `name` is not one.
    """
    points = plugin_points(group)
    if name not in points:
        raise SlmkitError(f"Unknown {kind} {name!r}.", hint=f"Installed: {', '.join(points)}.")
    return points[name].load()
