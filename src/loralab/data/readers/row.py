"""One raw row of a data file, with where it came from, checked to hold only text a tokenizer can read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loralab.errors import DataError

#: containers (objects, lists) inside one another; a chat row needs 3, real rows a handful
MAX_DEPTH = 100
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Row:
    """A row's fields and its location for error messages, e.g. ``train.jsonl:12``.

    Refused on construction (DataError naming the field): containers nested more than ``MAX_DEPTH``
    deep, and strings holding a lone UTF-16 surrogate (JSON ``"\\ud800"``, half of an emoji cut in two),
    which is not text: a tokenizer or a UTF-8 write would fail on it later, far from this row.
    """

    where: str
    fields: dict[str, Any]

    def __post_init__(self) -> None:
        check_values(self.fields, self.where)


def check_values(value: Any, where: str) -> None:
    """DataError if ``value`` nests deeper than ``MAX_DEPTH`` or holds a lone surrogate (iterative: any depth)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, f"field {path!r}", where)
        elif isinstance(item, (dict, list, tuple)):
            if depth == MAX_DEPTH:
                raise too_deep(where)
            if isinstance(item, dict):
                for key, child in item.items():
                    key = str(key)
                    _check_text(key, f"a field name in {path!r}" if path else "a field name", where)
                    stack.append((child, depth + 1, f"{path}.{key}" if path else key))
            else:
                stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))


def too_deep(where: str) -> DataError:
    """The error for a row nested beyond ``MAX_DEPTH`` (also raised when a JSON decoder runs out of stack)."""
    return DataError(
        f"{where}: the row is nested more than {MAX_DEPTH} levels deep; "
        "a data row holds text in a few levels of objects and lists."
    )


def _check_text(text: str, what: str, where: str) -> None:
    match = _SURROGATE.search(text)
    if match:
        raise DataError(
            f"{where}: {what} holds a lone surrogate U+{ord(match.group()):04X} at character {match.start()} "
            "(half of a UTF-16 pair, e.g. a cut emoji), which is not text. Remove it or re-export the file."
        )
