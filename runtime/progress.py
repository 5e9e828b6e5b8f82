"""Progress of long work (conversion, parity, packaging), reported through a callback so library
code never draws on the console.

A long function takes `progress: ProgressCallback | None` and reports through `Steps`; the CLI
turns the events into its one rich display (cli/progress.py), and another caller can log them,
forward them to a UI, or pass None to drop them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ProgressEvent:
    """The state of one step after a change.

    `step` identifies the step (it stays while `description` changes); `completed` and `total` are
    in the step's `unit` ("bytes", or "items": prompts, requests; `total` None when the length is
    unknown). `done` marks the step over; a `transient` step that is done has nothing left worth showing.
    """

    step: int
    description: str
    completed: float = 0.0
    total: float | None = None
    done: bool = False
    transient: bool = False
    unit: str = "items"


ProgressCallback = Callable[[ProgressEvent], None]

_ids = itertools.count(1)


class Step:
    """One step of long work; every change is sent to the callback as a ProgressEvent."""

    def __init__(self, callback: ProgressCallback | None, description: str, total: float | None,
                 transient: bool, unit: str = "items") -> None:
        self._callback = callback
        self._event = ProgressEvent(next(_ids), description, 0.0, total, transient=transient, unit=unit)
        self._send()

    def _send(self, **changes: object) -> None:
        self._event = replace(self._event, **changes)
        if self._callback is not None:
            self._callback(self._event)

    def advance(self, amount: float = 1.0) -> None:
        self._send(completed=self._event.completed + amount)

    def describe(self, description: str) -> None:
        self._send(description=description)

    def finish(self) -> None:
        """Mark the step done (a step of known length counts as complete)."""
        total = self._event.total
        self._send(completed=total if total is not None else self._event.completed, done=True)


class Steps:
    """Starts steps that report to one callback (None: nothing is reported)."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback

    def start(self, description: str, total: float | None = None, transient: bool = False,
              unit: str = "items") -> Step:
        """A step of `total` `unit`s ("bytes" or "items"; None: unknown length); a `transient` one
        disappears once finished."""
        return Step(self.callback, description, total, transient, unit)
