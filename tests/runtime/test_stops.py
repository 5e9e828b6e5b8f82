"""Stop sequences: cut at the earliest, streamed or whole, however the text arrives in pieces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slmkit.runtime.stops import StopScanner, cut_at_stop


def test_the_earliest_stop_sequence_wins() -> None:
    assert cut_at_stop("1. Bananas\n2. Apples", ["\n", "Banana"]) == ("1. ", True)
    assert cut_at_stop("no stop here", ["\n\n"]) == ("no stop here", False)
    assert cut_at_stop("abc", []) == ("abc", False)


@given(st.text(alphabet="ab\nX", max_size=40), st.lists(st.text(alphabet="ab\nX", min_size=1, max_size=4), max_size=4),
       st.lists(st.integers(1, 6), min_size=1, max_size=20))
def test_streamed_pieces_give_exactly_the_cut_text(text: str, stops: list[str], sizes: list[int]) -> None:
    scanner, out, position = StopScanner(stops), [], 0
    for size in sizes * 10:
        if position >= len(text):
            break
        out.append(scanner.feed(text[position:position + size]))
        position += size
    out.append(scanner.feed(text[position:]))
    out.append(scanner.flush())
    expected, stopped = cut_at_stop(text, stops)
    assert "".join(out) == expected and scanner.stopped == stopped
