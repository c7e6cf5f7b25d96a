"""Rows of a benchmark file, which must not be empty."""

from __future__ import annotations

from os import PathLike

from loralab.data.readers import Row, read_rows
from loralab.errors import DataError


def benchmark_rows(path: str | PathLike, benchmark: str) -> list[Row]:
    """The rows of a ``benchmark`` file (JSONL, or any format :func:`read_rows` knows)."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no rows found; expected {benchmark} records.")
    return rows
