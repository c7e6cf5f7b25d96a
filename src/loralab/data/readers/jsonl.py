"""JSON Lines: one JSON object per line; blank lines are skipped."""

from __future__ import annotations

import json
from pathlib import Path

from loralab.data.readers.row import Row, too_deep
from loralab.data.readers.text_file import read_utf8
from loralab.errors import DataError


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a ``.jsonl`` file, each located by its 1-based line number."""
    rows = []
    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{where}: invalid JSON at column {error.colno} ({error.msg}). "
                "Each line of a .jsonl file must be one complete JSON object."
            ) from None
        except RecursionError:
            raise too_deep(where) from None
        if not isinstance(value, dict):
            raise DataError(f"{where}: expected a JSON object {{...}}, got {type(value).__name__}.")
        rows.append(Row(where, value))
    return rows
