"""One exception type for every user-facing failure.

The CLI prints its message (no traceback) and exits non-zero; anything else is a bug.
"""


class SlmkitError(Exception):
    """A problem with the user's input or environment, worded for the user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.hint}" if self.hint else text
