"""The converter raises the runtime's one user-facing error type (the CLI catches only that)."""

from slmkit.runtime.errors import SlmkitError

__all__ = ["SlmkitError"]
