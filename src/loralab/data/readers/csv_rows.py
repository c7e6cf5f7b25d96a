"""CSV with a header row; a ``messages`` (or ShareGPT ``conversations``) cell holds the conversation as a JSON list."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from loralab.data.readers.row import Row, too_deep
from loralab.data.readers.text_file import read_utf8
from loralab.errors import DataError

#: columns whose cells hold a conversation as JSON, and the shape of one message there
JSON_COLUMNS = {"messages": '{"role": "user", "content": "..."}', "conversations": '{"from": "human", "value": "..."}'}


def read_csv(path: Path) -> list[Row]:
    """Rows of a ``.csv`` file keyed by the header; rows located by the line they start on."""
    reader = csv.reader(io.StringIO(read_utf8(path), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        header = _checked_header(path, header)
        rows = []
        start = reader.line_num + 1
        for cells in reader:
            where = f"{path}:{start}"
            start = reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise DataError(f"{where}: {len(cells)} cells but the header has {len(header)} columns.")
            fields = dict(zip(header, cells))
            for column in JSON_COLUMNS:
                if fields.get(column, "").strip():  # an empty cell (preference exports carry the column) is no conversation
                    fields[column] = _parse_messages(where, fields[column], column)
            rows.append(Row(where, fields))
        return rows
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error}).") from None


def _checked_header(path: Path, header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    if not all(names):
        raise DataError(f"{path}:1: the header row has an empty column name.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}:1: repeated column names in the header: {', '.join(repeated)}.")
    return names


def _parse_messages(where: str, cell: str, column: str) -> object:
    try:
        return json.loads(cell)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{where}: the {column!r} cell is not valid JSON ({error.msg}). "
            f"Write it as a JSON list: [{JSON_COLUMNS[column]}, ...]."
        ) from None
    except RecursionError:
        raise too_deep(where) from None
