"""Closed label sets (`options`): find the labels a request offers, answer with the one the tier
scores best, and take its probability among the labels as the confidence.

Pinned by vectors/options.jsonl (extraction and answer text). Extraction is deliberately narrow:
one list introduced by a cue ("one of:", "Options:", "Possible intents:", "(a / b / c)",
"Answer a, b or c."), every item short. A request with two lists (a JSON object with two
fields) or none has no closed set, and the method falls back to `token_logprob`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MAX_ITEM_CHARS = 48
MAX_ITEM_WORDS = 4
MIN_OPTIONS = 2

# A cue, then an inline list up to the end of its sentence or line, or a list one item per line.
_CUE = (r"(?:\bone of(?: the following| these)?(?: [a-z]+)?|\boptions(?: are)?|\bpossible [a-z]+"
        r"|\bchoices(?: are)?|\bchoose from|\blabels(?: are)?|\bcategories(?: are)?)")
_CUED_LINES = re.compile(_CUE + r"\s*:[ \t]*\n((?:[ \t]*[-*]?[ \t]*[^\n]+\n?)+)", re.IGNORECASE)
_CUED_INLINE = re.compile(_CUE + r"\s*(?::|-|–)[ \t]*([^\n]+?)(?:\.(?:\s|$)|\?(?:\s|$)|\n|$)", re.IGNORECASE)
_ANSWER_LIST = re.compile(r"\banswer(?: with)?\s+((?:[\w'-]+(?: [\w'-]+){0,3}, )+[\w'-]+(?: [\w'-]+){0,3},? or "
                          r"[\w'-]+(?: [\w'-]+){0,3})\s*(?:\.|$)", re.IGNORECASE | re.MULTILINE)
_SLASHED = re.compile(r"\(([^()\n]+?(?:\s/\s[^()\n]+?)+)\)")
_JSON_FORM = re.compile(r"\{[^{}\n]*<[a-z_]+>[^{}\n]*\}")


def _items(text: str, separators: str) -> list[str] | None:
    parts = [p.strip(" \t\"'`*-") for p in re.split(separators, text.strip())]
    parts = [p for p in parts if p]
    if len(parts) < MIN_OPTIONS or len(set(parts)) != len(parts):
        return None
    if any(len(p) > MAX_ITEM_CHARS or len(p.split()) > MAX_ITEM_WORDS for p in parts):
        return None
    return parts


def _inline(text: str) -> list[str] | None:
    return _items(text, r"\s*,\s*(?:or\s+|and\s+)?|\s+or\s+")


def _lines(block: str) -> list[str] | None:
    lines = []
    for line in block.split("\n"):
        if not line.strip():
            break
        lines.append(line)
    return _items("\n".join(lines), r"\n")


def extract_options(prompt: str) -> list[str] | None:
    """The closed set of labels `prompt` asks to choose from, in order, or None.

    None when no list is found, when more than one list is (each would need its own answer),
    or when an item is long (over MAX_ITEM_CHARS characters or MAX_ITEM_WORDS words).
    """
    found: list[tuple[int, list[str] | None]] = []
    taken: list[tuple[int, int]] = []
    for pattern, parse in ((_CUED_LINES, _lines), (_CUED_INLINE, _inline), (_ANSWER_LIST, _inline),
                           (_SLASHED, lambda t: _items(t, r"\s/\s"))):
        for match in pattern.finditer(prompt):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.append((span[0], parse(match.group(1))))
    lists = [items for _, items in sorted(found, key=lambda f: f[0]) if items]
    return lists[0] if len(lists) == 1 else None


def answer_text(prompt: str, option: str) -> str:
    """What the tier answers when it picks `option`: the prompt's JSON form with its one
    `<placeholder>` filled (e.g. {"intent": "<label>"}), else the option itself."""
    forms = _JSON_FORM.findall(prompt)
    if len(forms) == 1 and len(re.findall(r"<[a-z_]+>", forms[0])) == 1:
        return re.sub(r"<[a-z_]+>", lambda _: option, forms[0])
    return option


def answer_prefix(prompt: str) -> str:
    """The part of the answer before the option (the JSON form up to its placeholder), forced
    before the options are scored so the tier reads them where it would write them."""
    forms = _JSON_FORM.findall(prompt)
    if len(forms) == 1 and len(re.findall(r"<[a-z_]+>", forms[0])) == 1:
        return forms[0][:forms[0].index("<")]
    return ""


class Continuation(Protocol):
    """A prompt evaluated in a tier's engine, extendable token by token (KV cache kept)."""

    prompt_tokens: int  # tokens of the prompt it was opened with

    def logprobs(self) -> np.ndarray:
        """Natural-log probabilities [vocab] of the next token."""

    def append(self, tokens: Sequence[int]) -> None: ...

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` as a continuation (no BOS, special tokens not parsed)."""


@dataclass(frozen=True)
class Choice:
    index: int  # into the options
    probability: float  # of the chosen option among the options, in (0, 1]
    evaluated: int  # tokens the engine evaluated after the prompt
    margin: float = 1.0  # closest branch: chosen minus runner-up renormalized probability, in [0, 1]


def choose(continuation: Continuation, options: Sequence[Sequence[int]]) -> Choice:
    """Walk the options' token trie greedily: at each branch, take the child with the highest
    probability renormalized over the children (an option ending here counts with the mass of
    every token that continues no option). The confidence is the product of the chosen branches'
    renormalized probabilities; the margin is the smallest gap, over the branches, between the
    chosen branch's renormalized probability and the runner-up's. Tokens after the last branch are
    not evaluated.

    Raises ValueError for no options, an empty option, or duplicate token sequences.
    """
    sequences = [tuple(o) for o in options]
    if not sequences or any(not s for s in sequences) or len(set(sequences)) != len(sequences):
        raise ValueError("options must be distinct, non-empty token sequences")
    live = list(range(len(sequences)))
    depth, probability, evaluated, margin = 0, 1.0, 0, 1.0
    while len(live) > 1:
        ended = [i for i in live if len(sequences[i]) == depth]
        children = sorted({sequences[i][depth] for i in live if len(sequences[i]) > depth})
        if len(children) == 1 and not ended:
            continuation.append(children[:1])
            evaluated += 1
            depth += 1
            continue
        logprobs = continuation.logprobs()
        masses = [math.exp(float(logprobs[t])) for t in children]
        end_mass = max(0.0, 1.0 - sum(masses))
        candidates = masses + ([end_mass] if ended else [])
        total = sum(candidates)
        shares = [c / total for c in candidates] if total > 0 else [1.0 / len(candidates)] * len(candidates)
        best = max(range(len(candidates)), key=lambda k: shares[k])  # first wins a tie
        probability *= shares[best]
        margin = min(margin, shares[best] - max(s for k, s in enumerate(shares) if k != best))
        if best == len(masses):
            return Choice(ended[0], probability, evaluated, margin)
        token = children[best]
        live = [i for i in live if len(sequences[i]) > depth and sequences[i][depth] == token]
        depth += 1
        if len(live) > 1:
            continuation.append([token])
            evaluated += 1
    return Choice(live[0], probability, evaluated, margin)

