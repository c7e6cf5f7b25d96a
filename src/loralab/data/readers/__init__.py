"""Reading data files into raw rows; the format is chosen by the file extension.

loralab's own readers: ``.jsonl`` (one object per line), ``.json`` (a list of objects), ``.csv``
(header row), ``.parquet`` (needs pyarrow). With Hugging Face ``datasets`` installed, also ``.txt``
(a text row per line), ``.tsv`` and ``.arrow`` (:mod:`.hf_files`), folders saved by ``save_to_disk``,
and hub dataset names from the local cache (``org/name``, ``org/name:config[split]``; :mod:`.hub`).
Text formats may be gzip-compressed (``.jsonl.gz``, ``.csv.gz``...). A path that does not exist but
holds ``*``, ``?`` or ``[`` is a glob: the files it matches are read in sorted order, each by its reader.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from functools import partial
from pathlib import Path

from loralab.data.readers.csv_rows import read_csv
from loralab.data.readers.hf_disk import MARKER_FILES, is_hf_dataset_dir, read_hf_disk
from loralab.data.readers.hf_files import BUILDERS, read_with_datasets
from loralab.data.readers.hub import check_cached, hub_name, read_hub
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
    **{suffix: partial(read_with_datasets, suffix=suffix) for suffix in BUILDERS},  # need datasets
}
#: binary formats, never gzip-compressed
UNCOMPRESSED = (".parquet", ".arrow")
_GLOB_CHARACTERS = "*?["

__all__ = ["READERS", "Row", "check_source", "read_rows"]


def read_rows(path: str | Path) -> list[Row]:
    """All rows of a data file, dataset folder, glob or cached hub dataset, in order (may be empty)."""
    path = Path(path)
    if not path.exists():
        matches = _matches(path)
        if matches:
            return [row for match in matches for row in read_rows(match)]
        name = hub_name(str(path)) if _hub_candidate(path) else None
        if name is not None:
            return read_hub(name)
        raise _missing(path)
    if path.is_dir():
        if is_hf_dataset_dir(path):
            return read_hf_disk(path)
        raise DataError(f"{path}: is a folder but not a saved Hugging Face dataset (no {' / '.join(MARKER_FILES)}).")
    return _reader(path)(path)


def check_source(path: str | Path) -> None:
    """What can be checked before training without reading the data: the file, the glob's matches, a
    hub name's cache and the packages they need. DataError saying what is wrong."""
    path = Path(path)
    if path.exists():
        return
    matches = _matches(path)
    for match in matches:
        if match.is_file():
            _reader(match)
    name = hub_name(str(path)) if not matches and _hub_candidate(path) else None
    if name is not None:
        check_cached(name)
    elif not matches:
        raise _missing(path) if _is_glob(path) else DataError(f"data file {str(path)!r} not found")


def _reader(path: Path) -> Callable[[Path], list[Row]]:
    suffix = Path(path.stem).suffix.lower() if is_gzip(path) else path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None or (is_gzip(path) and suffix in UNCOMPRESSED):
        known = ", ".join(READERS)
        shown = "".join(path.suffixes[-2:]) if is_gzip(path) else path.suffix
        raise DataError(
            f"{path}: unknown data file extension {shown or '(none)'!r}. Supported: {known} "
            f"({', '.join(BUILDERS)} with the datasets package; all but {' and '.join(UNCOMPRESSED)} also as .gz), "
            "a folder saved by datasets.save_to_disk, or a Hugging Face dataset name."
        )
    return reader


def _is_glob(path: Path) -> bool:
    return any(character in str(path) for character in _GLOB_CHARACTERS)


def _matches(pattern: Path) -> list[Path]:
    """The files (and saved dataset folders) that a glob ``pattern`` matches, sorted ([] if it is no glob)."""
    if not _is_glob(pattern):
        return []
    found = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    return [p for p in found if p.is_file() or is_hf_dataset_dir(p)]


def _missing(path: Path) -> DataError:
    if _is_glob(path):
        return DataError(f"{path}: no data files match this pattern.")
    return DataError(f"{path}: no such file or folder.")


def _hub_candidate(path: Path) -> bool:
    """Whether a path that does not exist could name a hub dataset: relative, and no data-file extension."""
    text = str(path)
    suffix = Path(path.stem).suffix.lower() if is_gzip(path) else path.suffix.lower()
    return not path.is_absolute() and not text.startswith((".", "~")) and suffix not in READERS and not is_gzip(path)
