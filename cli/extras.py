"""Which optional install ("extra") a command needs, checked before the command imports it.

`pip install slmkit` is the runtime (route, serve, simulate, cost, router eval, verify);
`pip install "slmkit[convert]"` adds conversion, parity, packaging and router training
(pyproject.toml `[project.optional-dependencies]`, the one place the lists live).
"""

from __future__ import annotations

from importlib.util import find_spec

from slmkit.runtime.errors import SlmkitError

# Extra -> the import names whose absence means it is not installed (one per heavy stack).
EXTRA_MODULES = {"convert": ("torch", "transformers", "sklearn", "gguf", "onnx", "coremltools"),
                 "batch": ("ray", "pyarrow")}


def _importable(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):  # a finder refusing it, a half-removed package
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here (empty when it is installed)."""
    return [name for name in EXTRA_MODULES[extra] if not _importable(name)]


def require_extra(extra: str, command: str) -> None:
    """Raise one SlmkitError line naming the install command when `extra` is not installed.

    Raises: SlmkitError, before any heavy import, so nothing is half-done.
    """
    missing = missing_modules(extra)
    if missing:
        raise SlmkitError(f"`slmkit {command}` needs the {extra} extra ({', '.join(missing)} not installed): "
                          f"pip install \"slmkit[{extra}]\"")
