"""Data files loralab has no reader of its own for, read with Hugging Face ``datasets`` (when installed).

``.txt`` (datasets' ``text`` builder: one row ``{"text": line}`` per line; blank lines are skipped),
``.tsv`` (its ``csv`` builder, tab-separated, header row) and ``.arrow`` (its ``arrow`` builder);
gzip-compressed too (``.txt.gz``). Rows are located by line (text) or row number, as loralab's own
readers locate theirs. The builder's cache goes to a temporary folder: reading leaves no files behind.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
from pathlib import Path
from typing import Any

from loralab.data.readers.hf_common import import_datasets, quiet
from loralab.data.readers.row import Row
from loralab.data.readers.text_file import is_gzip
from loralab.errors import DataError

#: extension → (datasets builder, its options)
BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".txt": ("text", {}),
    ".tsv": ("csv", {"sep": "\t", "na_filter": False}),  # an empty cell is "", not null
    ".arrow": ("arrow", {}),
}


def read_with_datasets(path: Path, suffix: str) -> list[Row]:
    """Rows of ``path``, whose data extension (``.gz`` removed) is ``suffix``, read by datasets' builder for it."""
    builder, options = BUILDERS[suffix]
    datasets = import_datasets(f"Reading {suffix} files ({path})")
    with quiet(datasets), tempfile.TemporaryDirectory(prefix="loralab-datasets-") as cache:
        try:
            if builder == "csv":  # every cell as text, as loralab reads CSV (no "2." turned into 2.0)
                options = {**options, "features": _text_columns(datasets, path, options["sep"])}
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache, **options)
            values = loaded.to_list()
        except Exception as error:  # datasets and pyarrow raise many unrelated types for an unreadable file
            cause = error.__cause__ or error
            raise DataError(f"{path}: datasets could not read it as {builder} ({_first_line(cause)}).") from None
    if builder == "text":
        return [Row(f"{path}:{number}", fields) for number, fields in enumerate(values, start=1) if fields["text"].strip()]
    return [Row(f"{path}: row {number}", fields) for number, fields in enumerate(values, start=1)]


def _text_columns(datasets: Any, path: Path, sep: str) -> Any:
    """Features naming every column of the header row as a string column."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader([handle.readline()], delimiter=sep), [])
    return datasets.Features({name: datasets.Value("string") for name in header})


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
