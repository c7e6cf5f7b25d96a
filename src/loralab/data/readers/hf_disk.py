"""Hugging Face ``datasets`` folders written by ``save_to_disk``, read when ``datasets`` is installed."""

from __future__ import annotations

from pathlib import Path

from loralab.data.readers.hf_common import import_datasets, one_split
from loralab.data.readers.row import Row
from loralab.errors import DataError

MARKER_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_hf_dataset_dir(path: Path) -> bool:
    """Whether ``path`` is a folder that ``datasets.save_to_disk`` wrote."""
    return path.is_dir() and any((path / name).is_file() for name in MARKER_FILES)


def read_hf_disk(path: Path) -> list[Row]:
    """Rows of a saved Dataset; for a DatasetDict, its ``train`` split (or its only split)."""
    datasets = import_datasets(f"Reading the Hugging Face dataset folder {path}")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as error:  # datasets raises several unrelated types for a bad folder
        raise DataError(f"{path}: not a readable Hugging Face dataset folder ({error}).") from None
    fix = "Save the split to train on by itself (dataset_dict[name].save_to_disk(folder))."
    loaded, label = one_split(datasets, loaded, str(path), fix)
    return [Row(f"{label}: row {number}", dict(fields)) for number, fields in enumerate(loaded, start=1)]
