"""JSON: a file holding one list of objects; each object is located by the line it starts on."""

from __future__ import annotations

import json
from pathlib import Path

from loralab.data.readers.row import Row, too_deep
from loralab.data.readers.text_file import read_utf8
from loralab.errors import DataError

_DECODER = json.JSONDecoder()


def read_json_list(path: Path) -> list[Row]:
    """Rows of a ``.json`` file whose top level is ``[{...}, {...}, ...]``."""
    text = read_utf8(path)
    position = _skip_space(text, 0)
    if position == len(text):
        return []
    if text[position] != "[":
        raise DataError(
            f"{path}:{_line(text, position)}: a .json data file must hold a list of objects [{{...}}, ...]. "
            "For one object per line, name the file .jsonl."
        )
    rows: list[Row] = []
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return _expect_end(path, text, position + 1, rows)
    while True:
        where = f"{path}:{_line(text, position)}"
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: invalid JSON at column {error.colno} ({error.msg}).") from None
        except RecursionError:
            raise too_deep(f"{where} (item {len(rows) + 1})") from None
        if not isinstance(value, dict):
            raise DataError(f"{where}: list item {len(rows) + 1} must be a JSON object, got {type(value).__name__}.")
        rows.append(Row(f"{where} (item {len(rows) + 1})", value))
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif text.startswith("]", position):
            return _expect_end(path, text, position + 1, rows)
        else:
            raise DataError(f"{path}:{_line(text, position)}: expected ',' or ']' after list item {len(rows)}.")


def _expect_end(path: Path, text: str, position: int, rows: list[Row]) -> list[Row]:
    position = _skip_space(text, position)
    if position != len(text):
        raise DataError(f"{path}:{_line(text, position)}: unexpected text after the closing ']'.")
    return rows


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1
