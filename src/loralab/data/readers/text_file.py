"""Reading a whole text file as UTF-8, with a DataError instead of a decode trace."""

from __future__ import annotations

from pathlib import Path

from loralab.errors import DataError


def read_utf8(path: Path) -> str:
    """The file's text (a leading BOM is dropped); DataError if it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: the file is not valid UTF-8 ({error.reason}). Save it as UTF-8.") from None
