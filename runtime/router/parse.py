"""Reading a small model's router answer: messy text in, (label, confidence) or nothing out.

Small models wrap JSON in prose or code fences, use single quotes, write 85% or 8/10, or
answer with a bare word. Anything not clearly one label is unparsable: the policy then sends
the request to its safe tier. Pinned by vectors/router_output.jsonl.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

LABEL_KEYS = ("complexity", "tier", "label", "category", "class", "difficulty")
# JSON nested deeper than this is not read as JSON (the ports' readers stop at the same depth; Python's
# own json would raise RecursionError somewhere near its recursion limit).
MAX_JSON_DEPTH = 512
CONFIDENCE_KEYS = ("confidence", "conf", "probability", "certainty")


@dataclass(frozen=True)
class ParsedRoute:
    label: str
    confidence: float | None  # None: the output gave none


class _Strings:
    """The "..." and '...' strings (backslash escapes) of a scan that walks text code point by code point."""

    def __init__(self) -> None:
        self.quote, self.escaped = "", False

    def consumes(self, ch: str, may_open: bool = True) -> bool:
        """True when `ch` belongs to a string (its quotes included): the scan skips it."""
        if self.quote:
            if self.escaped:
                self.escaped = False
            elif ch == "\\":
                self.escaped = True
            elif ch == self.quote:
                self.quote = ""
            return True
        if may_open and ch in "\"'":
            self.quote = ch
            return True
        return False


def _json_objects(text: str) -> list[str]:
    """Every balanced {...} span, outermost first, ignoring braces inside strings (opened inside a span)."""
    spans, depth, start, strings = [], 0, -1, _Strings()
    for i, ch in enumerate(text):
        if strings.consumes(ch, may_open=depth > 0):
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
    return spans


def _too_deep(text: str) -> bool:
    """Brackets nested deeper than MAX_JSON_DEPTH outside strings (a lenient scan: "'" quotes too)."""
    depth, strings = 0, _Strings()
    for ch in text:
        if strings.consumes(ch):
            continue
        if ch in "{[":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif ch in "}]":
            depth -= 1
    return False


def _loads_lenient(span: str) -> dict | None:
    """json.loads, then again with single quotes and trailing commas repaired; None for anything else
    (not JSON, not an object, nested deeper than MAX_JSON_DEPTH, an integer past Python's digit limit)."""
    for candidate in (span, re.sub(r",\s*([}\]])", r"\1", span.replace("'", '"'))):
        if _too_deep(candidate):
            continue
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_confidence(value: object) -> float | None:
    """0.85, "0.85", 85, "85%", "8/10" -> 0.85/0.8; anything else (or out of range) -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float (json.loads keeps ints exact)
            return None
    elif isinstance(value, str):
        text = value.strip()
        ratio = re.fullmatch(r"(\d+(?:\.\d+)?)\s*/\s*(10|100)", text)
        if ratio:
            return parse_confidence(float(ratio.group(1)) / float(ratio.group(2)))
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%?)", text)
        if not match:
            return None
        number = float(match.group(1))
        if match.group(2):
            return parse_confidence(number / 100)
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if number <= 1:
        return number
    if number <= 100:
        return number / 100
    return None


def _label_of(value: object, labels: tuple[str, ...]) -> str | None:
    if not isinstance(value, str):
        return None
    word = value.strip().strip(".").lower()
    return word if word in labels else None


def _from_object(obj: dict, labels: tuple[str, ...]) -> ParsedRoute | None:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    label = next((_label_of(lowered[k], labels) for k in LABEL_KEYS if k in lowered), None)
    if label is None:
        return None
    confidence = next((parse_confidence(lowered[k]) for k in CONFIDENCE_KEYS if k in lowered), None)
    return ParsedRoute(label, confidence)


def parse_router_output(text: str, labels: tuple[str, ...] = ("simple", "medium", "complex")) -> ParsedRoute | None:
    """The router's verdict, or None when the text does not name exactly one label clearly."""
    for span in _json_objects(text):
        obj = _loads_lenient(span)
        if obj is not None:
            parsed = _from_object(obj, labels)
            if parsed is not None:
                return parsed
    alternatives = "|".join(labels)
    keyed = re.search(rf'["\']?(?:{"|".join(LABEL_KEYS)})["\']?\s*[:=]\s*["\']?({alternatives})\b', text, re.IGNORECASE)
    if keyed and keyed.group(1).lower() in labels:  # IGNORECASE also matches "sımple" (dotless i): not a label
        confidence = re.search(rf'["\']?(?:{"|".join(CONFIDENCE_KEYS)})["\']?\s*[:=]\s*["\']?(\d+(?:\.\d+)?\s*%?)', text, re.IGNORECASE)
        return ParsedRoute(keyed.group(1).lower(), parse_confidence(confidence.group(1)) if confidence else None)
    named = {m.lower() for m in re.findall(rf"\b({alternatives})\b", text, re.IGNORECASE)} & set(labels)
    if len(named) == 1:
        return ParsedRoute(named.pop(), None)
    return None
