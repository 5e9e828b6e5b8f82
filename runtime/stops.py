"""Stop sequences (OpenAI's `stop`): the answer ends before the first occurrence of any of them.

Applied by the pipeline to every tier's text, so the result is the same whatever the engine; a
stream holds back just enough text to never emit the start of a stop sequence it later cuts.
"""

from __future__ import annotations

from collections.abc import Sequence

# OpenAI's bounds on `stop`: up to 4 sequences, each non-empty.
MAX_STOPS = 4


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """(`text` up to the earliest stop sequence, whether one was found)."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[:min(hits)], True) if hits else (text, False)


class StopScanner:
    """Feed streamed pieces; get back the text that is safe to emit. After a stop sequence shows
    up, `stopped` is True and nothing more is emitted."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The part of `piece` (plus what was held back) that can be shown: text up to the first stop
        sequence, nothing after it, and the last `hold` characters kept back while they may begin a stop.
        """
        if self.stopped:
            return ""
        self.pending += piece
        text, hit = cut_at_stop(self.pending, self.stops)
        if hit and not self._may_start_earlier(len(text)):
            self.stopped, self.pending = True, ""
            return text
        if hit:
            return ""  # a longer stop sequence starting earlier may still complete: wait
        safe = len(self.pending) - self.hold
        if safe <= 0:
            return ""
        out, self.pending = self.pending[:safe], self.pending[safe:]
        return out

    def _may_start_earlier(self, end: int) -> bool:
        """Whether an unfinished stop sequence starts before `end` in the held text."""
        return any(len(self.pending) - j < len(s) and s.startswith(self.pending[j:])
                   for j in range(end) for s in self.stops)

    def flush(self) -> str:
        """What is still held back when the answer ends (cut at a stop sequence it holds)."""
        if self.stopped:
            return ""
        out, self.stopped = cut_at_stop(self.pending, self.stops)
        self.pending = ""
        return out


def trim_logprobs(entries: list[dict], kept_bytes: int) -> list[dict]:
    """OpenAI logprobs `content` entries covering the first `kept_bytes` UTF-8 bytes of the answer
    (a token that straddles the cut is kept: it produced kept text)."""
    kept, seen = [], 0
    for entry in entries:
        if seen >= kept_bytes:
            break
        kept.append(entry)
        seen += len(entry.get("bytes") or [])
    return kept
