"""Hugging Face hub dataset names (``org/name``, ``org/name:config``, ``org/name[split]``), read offline.

A name is read only from this machine's caches, never from the network (as with ``HF_DATASETS_OFFLINE=1``):
the prepared dataset that ``datasets.load_dataset(name)`` left in the datasets cache, or else the files
of the dataset repository in the hub cache (``huggingface-cli download --repo-type dataset name``).
A name in neither is one DataError saying what is missing and how to get it.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.data.readers.hf_common import import_datasets, one_split, quiet
from loralab.data.readers.row import Row
from loralab.errors import DataError

_NAME = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*)?)(?::(?P<config>[\w.-]+))?(?:\[(?P<split>[\w.-]+)\])?")


@dataclass(frozen=True)
class HubName:
    """A dataset on the hub: its repository, and optionally a config and a split."""

    text: str
    repo: str
    config: str | None
    split: str | None


def hub_name(text: str) -> HubName | None:
    """``text`` as a hub dataset name, or None when it cannot be one (a path with an extension loralab reads...)."""
    match = _NAME.fullmatch(text)
    if match is None or ".." in text or text.endswith("."):
        return None
    return HubName(text, match["repo"], match["config"], match["split"])


def check_cached(name: HubName) -> None:
    """DataError unless ``datasets`` is installed and ``name`` is in a local cache (nothing is loaded)."""
    datasets = import_datasets(f"Reading the Hugging Face dataset {name.repo!r}")
    if _prepared(datasets, name.repo) is None and _snapshot(name.repo) is None:
        raise _not_cached(datasets, name)


def read_hub(name: HubName) -> list[Row]:
    """Rows of the dataset's split (``train``, or its only one, unless the name gives one), from the local caches."""
    datasets = import_datasets(f"Reading the Hugging Face dataset {name.repo!r}")
    prepared, snapshot = _prepared(datasets, name.repo), _snapshot(name.repo)
    if prepared is None and snapshot is None:
        raise _not_cached(datasets, name)
    with quiet(datasets, offline=True), tempfile.TemporaryDirectory(prefix="loralab-datasets-") as cache:
        try:
            if prepared is not None:
                loaded = datasets.load_dataset(name.repo, name.config, split=name.split)
            else:
                loaded = datasets.load_dataset(str(snapshot), name.config, split=name.split, cache_dir=cache)
            fix = f"Name the split: {name.repo}[SPLIT]."
            loaded, label = one_split(datasets, loaded, name.text if name.split else name.repo, fix)
            values = loaded.to_list()
        except DataError:
            raise
        except Exception as error:  # datasets raises many types (a config or split it does not have, a bad file)
            lines = str(error).strip().splitlines() or [type(error).__name__]
            raise DataError(f"{name.text}: the cached Hugging Face dataset could not be read offline ({lines[0]}).") from None
    return [Row(f"{label}: row {number}", fields) for number, fields in enumerate(values, start=1)]


def _prepared(datasets: Any, repo: str) -> Path | None:
    """The datasets-cache folder of ``repo`` prepared by an earlier ``load_dataset`` (the layout datasets reads offline)."""
    from datasets.naming import camelcase_to_snakecase

    parts = repo.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = Path(os.path.expanduser(str(datasets.config.HF_DATASETS_CACHE))) / "___".join(parts)
    found = [p for p in glob.glob(str(root / "*" / "*" / "*")) if os.path.isdir(p)]
    return root if found else None


def _snapshot(repo: str) -> Path | None:
    """The dataset repository's folder in the hub cache, or None if it was never downloaded (no network used)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, repo_type="dataset", local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _not_cached(datasets: Any, name: HubName) -> DataError:
    from huggingface_hub import constants

    config = f", {name.config!r}" if name.config else ""
    return DataError(
        f"{name.text}: no such file or folder, and no Hugging Face dataset {name.repo!r} in the local caches "
        f"({datasets.config.HF_DATASETS_CACHE}, {constants.HF_HUB_CACHE}); loralab reads hub datasets offline. "
        f"Download it once where there is network: python -c \"import datasets; datasets.load_dataset({name.repo!r}{config})\" "
        f"(or: hf download --repo-type dataset {name.repo}), or give a local file."
    )
