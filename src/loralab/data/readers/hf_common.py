"""What the readers that use Hugging Face ``datasets`` share: importing it quietly, and choosing a split."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from loralab.data.readers.optional import import_for
from loralab.errors import DataError

DEFAULT_SPLIT = "train"


def import_datasets(purpose: str) -> ModuleType:
    """``import datasets``; DataError naming ``purpose`` and how to install it when it is missing."""
    return import_for("datasets", "datasets", purpose)


@contextmanager
def quiet(datasets: ModuleType, offline: bool = False) -> Iterator[None]:
    """No progress bars or info logs from ``datasets`` inside; ``offline``: as with ``HF_DATASETS_OFFLINE=1``."""
    bars_off = datasets.are_progress_bars_disabled()
    verbosity = datasets.logging.get_verbosity()
    was_offline = datasets.config.HF_HUB_OFFLINE
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if offline:
        datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = was_offline
        datasets.logging.set_verbosity(verbosity)
        if not bars_off:
            datasets.enable_progress_bars()


def one_split(datasets: ModuleType, loaded: Any, label: str, fix: str) -> tuple[Any, str]:
    """A Dataset from ``loaded``: itself, or of a DatasetDict its ``train`` split (or its only one); and its label."""
    if not isinstance(loaded, datasets.DatasetDict):
        return loaded, label
    splits = list(loaded.keys())
    if DEFAULT_SPLIT in loaded:
        split = DEFAULT_SPLIT
    elif len(splits) == 1:
        split = splits[0]
    else:
        raise DataError(f"{label}: the dataset has splits {splits} and none is named 'train'. {fix}")
    return loaded[split], f"{label}[{split}]"
