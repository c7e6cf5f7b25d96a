"""Reading a whole text file as UTF-8 (gzip-compressed when it ends in ``.gz``), with a DataError instead of a trace."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from loralab.errors import DataError


def is_gzip(path: Path) -> bool:
    """Whether ``path`` names a gzip-compressed file (``.gz``)."""
    return path.suffix.lower() == ".gz"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if it ends in ``.gz``; DataError if that fails."""
    raw = path.read_bytes()
    if not is_gzip(path):
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a complete gzip file ({error}). Re-download it, or decompress it yourself.") from None


def read_utf8(path: Path) -> str:
    """The file's text (a leading BOM is dropped; ``.gz`` decompressed); DataError if it is not UTF-8."""
    raw = read_bytes(path)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: the file is not valid UTF-8 ({error.reason}). Save it as UTF-8.") from None
