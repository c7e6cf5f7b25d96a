"""Parquet files, read with pyarrow when it is installed."""

from __future__ import annotations

from pathlib import Path

from loralab.data.readers.optional import import_for
from loralab.data.readers.row import Row
from loralab.errors import DataError


def read_parquet(path: Path) -> list[Row]:
    """Rows of a ``.parquet`` file, located by their 1-based row number."""
    parquet = import_for("pyarrow.parquet", "pyarrow", f"Reading {path}")
    try:
        table = parquet.read_table(str(path))
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({error}).") from None
    return [Row(f"{path}: row {number}", fields) for number, fields in enumerate(table.to_pylist(), start=1)]
