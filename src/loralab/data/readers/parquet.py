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
    rows = []
    for batch in table.to_batches():
        try:
            values = batch.to_pylist()
        except UnicodeDecodeError:  # pyarrow does not check that string columns hold UTF-8
            number = len(rows) + 1 + _first_bad_row(batch)
            raise DataError(f"{path}: row {number}: a string is not valid UTF-8. Rewrite the file from valid text.") from None
        start = len(rows)
        rows += [Row(f"{path}: row {start + i}", fields) for i, fields in enumerate(values, start=1)]
    return rows


def _first_bad_row(batch) -> int:
    """The 0-based index of the first row of ``batch`` that cannot be decoded."""
    for index in range(batch.num_rows):
        try:
            batch.slice(index, 1).to_pylist()
        except UnicodeDecodeError:
            return index
    return 0
