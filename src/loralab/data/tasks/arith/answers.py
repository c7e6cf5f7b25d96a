"""Reading the final integer answer out of a model's free-form text.

Order of preference: the first number after the last ``####``; after the last
"answer is" / "answer:" style marker; inside the last ``\\boxed{...}``; in the
last bold ``**...**``; otherwise the last number in the text. Numbers may
carry a sign, a ``$``, thousands commas and a fractional part (``3.0`` reads
as 3; ``2.5`` is not an integer and reads as None).

``extract_strict_answer`` reads only the number right after the last ``####`` (the training
format, like the "strict-match" of common GSM8K harnesses): a model that has not learned the
format scores zero there, whatever it computes.
"""

from __future__ import annotations

import re
from decimal import Decimal

NUMBER = re.compile(r"(?<![\w.])(?P<sign>[-−]\s?)?\$?\s?(?P<digits>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<fraction>\.\d+)?")
MARKERS = (
    re.compile(r"####"),
    re.compile(r"\banswer\s*(?:is|was|would be|will be|equals|[:=])", re.IGNORECASE),
)
ENCLOSURES = (re.compile(r"\\boxed\{([^{}]*)\}"), re.compile(r"\*\*([^*]+)\*\*"))


def extract_answer(text: str) -> int | None:
    """The final integer answer in ``text``, or None when there is no usable number."""
    match = _final_number(text)
    return None if match is None else _to_int(match)


def extract_strict_answer(text: str) -> int | None:
    """The number right after the last ``####`` (spaces allowed), or None."""
    found = list(MARKERS[0].finditer(text))
    if not found:
        return None
    rest = text[found[-1].end():]
    number = NUMBER.match(rest, len(rest) - len(rest.lstrip()))
    return None if number is None else _to_int(number)


def is_correct(prediction_text: str, answer: int) -> bool:
    """Whether the answer extracted from ``prediction_text`` equals ``answer``."""
    return extract_answer(prediction_text) == answer


def _final_number(text: str) -> re.Match[str] | None:
    for marker in MARKERS:
        found = list(marker.finditer(text))
        number = NUMBER.search(text, found[-1].end()) if found else None
        if number:
            return number
    for enclosure in ENCLOSURES:
        for span in reversed(list(enclosure.finditer(text))):
            number = NUMBER.search(text, span.start(1), span.end(1))
            if number:
                return number
    numbers = list(NUMBER.finditer(text))
    return numbers[-1] if numbers else None


def _to_int(match: re.Match[str]) -> int | None:
    value = Decimal(match.group("digits").replace(",", "") + (match.group("fraction") or ""))
    if match.group("sign"):
        value = -value
    return int(value) if value == value.to_integral_value() else None
