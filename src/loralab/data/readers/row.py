"""One raw row of a data file, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """A row's fields and its location for error messages, e.g. ``train.jsonl:12``."""

    where: str
    fields: dict[str, Any]
