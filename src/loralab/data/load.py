"""Loading validated records from a data file or an in-memory list, one format per source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Union

from loralab.data.fields import fail
from loralab.data.formats import MARKERS, format_of, parse_row
from loralab.data.readers import read_rows
from loralab.data.readers.row import check_values
from loralab.data.records import ChatRecord, CompletionRecord, InstructionRecord, PreferenceRecord, Record, TextRecord
from loralab.errors import DataError

Source = Union[str, PathLike, Sequence[Union[Record, Mapping[str, Any]]]]
RECORD_TYPES = (InstructionRecord, CompletionRecord, ChatRecord, TextRecord, PreferenceRecord)


def load_records(path: str | PathLike) -> list[Record]:
    """Every row of a data file as a validated record; the file must hold one format and at least one row."""
    return [record for _, record in located_records(Path(path))]


def located_records(source: Source) -> list[tuple[str, Record]]:
    """``(where, record)`` pairs from a path, or from a list of records / row mappings (``records[i]``)."""
    if isinstance(source, (str, PathLike)):
        name = str(source)
        located = [(row.where, row.fields) for row in read_rows(source)]
    elif isinstance(source, Sequence):
        name = "records"
        located = [(f"records[{index}]", item) for index, item in enumerate(source)]
        for where, item in located:
            if isinstance(item, Mapping):
                check_values(item, where)  # as rows read from files are
    else:
        raise DataError(f"A data source must be a file path or a list of records, got {type(source).__name__}.")
    if not located:
        raise DataError(f"{name}: no rows found. Add at least one record (see loralab.data.formats for the formats).")
    return _parse_all(located)


def _parse_all(located: list[tuple[str, Any]]) -> list[tuple[str, Record]]:
    records: list[tuple[str, Record]] = []
    first: tuple[str, str] | None = None  # (format, where)
    for where, item in located:
        fmt, record = _parse_one(where, item)
        if first is None:
            first = (fmt, where)
        elif fmt != first[0]:
            raise fail(
                where,
                f"this row is in {_describe(fmt)} format but {first[1]} is in {_describe(first[0])} format",
                "A data source must hold one format; put each format in its own file.",
            )
        records.append((where, record))
    return records


def _parse_one(where: str, item: Any) -> tuple[str, Record]:
    if isinstance(item, RECORD_TYPES):
        return format_of(item), item
    if isinstance(item, Mapping):
        return parse_row(item, where)
    raise fail(where, f"expected a record or a mapping of fields, got {type(item).__name__}")


def _describe(fmt: str) -> str:
    return f"{fmt} ({'/'.join(MARKERS.get(fmt, ()))})"
