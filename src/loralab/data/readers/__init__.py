"""Reading data files into raw rows; the format is chosen by the file extension.

``.jsonl`` (one object per line), ``.json`` (a list of objects), ``.csv``
(header row), ``.parquet`` (needs pyarrow), or a folder saved by Hugging Face
``datasets`` (needs datasets). Text formats may be gzip-compressed (``.jsonl.gz``, ``.csv.gz``...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loralab.data.readers.csv_rows import read_csv
from loralab.data.readers.hf_disk import MARKER_FILES, is_hf_dataset_dir, read_hf_disk
from loralab.data.readers.json_list import read_json_list
from loralab.data.readers.jsonl import read_jsonl
from loralab.data.readers.parquet import read_parquet
from loralab.data.readers.row import Row
from loralab.data.readers.text_file import is_gzip
from loralab.errors import DataError

READERS: dict[str, Callable[[Path], list[Row]]] = {
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".json": read_json_list,
    ".csv": read_csv,
    ".parquet": read_parquet,
}

__all__ = ["READERS", "Row", "read_rows"]


def read_rows(path: str | Path) -> list[Row]:
    """All rows of a data file or dataset folder, in file order (may be empty)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if path.is_dir():
        if is_hf_dataset_dir(path):
            return read_hf_disk(path)
        raise DataError(f"{path}: is a folder but not a saved Hugging Face dataset (no {' / '.join(MARKER_FILES)}).")
    suffix = Path(path.stem).suffix.lower() if is_gzip(path) else path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None or (is_gzip(path) and reader is read_parquet):
        known = ", ".join(READERS)
        shown = "".join(path.suffixes[-2:]) if is_gzip(path) else path.suffix
        raise DataError(
            f"{path}: unknown data file extension {shown or '(none)'!r}. "
            f"Supported: {known} (all but .parquet also as .gz), or a folder saved by datasets.save_to_disk."
        )
    return reader(path)

