"""A local model folder placed under a hub id in the Hugging Face cache, so other tools find it offline.

The hub cache keeps ``models--<owner>--<name>/refs/main`` (a commit hash) and
``snapshots/<hash>/<files>``; ``from_pretrained(hub_id)``, PEFT and lm-evaluation-harness read
it with no network. Weights are hard-linked (symlinked where that fails), never copied; the small
files are copied and made readable by transformers 4.x too. An entry that already exists (a real
download, or ours) is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from loralab.models.cache import atomic_save
from loralab.models.portable_files import make_portable
from loralab.outputs import atomic_write

logger = logging.getLogger("loralab")


def hub_cache_repo(repo_id: str) -> Path:
    """The cache folder of model ``repo_id`` (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def _link(source: Path, target: Path) -> None:
    """``target`` as the same file as ``source``: a hard link, else a symlink (a model is ~0.5 GB: no copy)."""
    try:
        os.link(source, target)
    except OSError:
        target.symlink_to(source.resolve())


def place_in_hub_cache(repo_id: str, folders: list[Path], key: str) -> Path | None:
    """Put the files of ``folders`` in the hub cache as ``repo_id``'s main revision, unless it has one.

    ``key`` names the content (the snapshot's hash is derived from it). Returns the snapshot
    folder, or None when ``repo_id`` already had an entry. OSError if the cache is not writable.
    """
    repo = hub_cache_repo(repo_id)
    ref = repo / "refs" / "main"
    if ref.is_file():
        return None
    commit = hashlib.sha1(f"loralab:{repo_id}:{key}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit

    def fill(tmp: Path) -> None:
        for folder in folders:
            for file in sorted(folder.iterdir()):
                if file.is_file():
                    (_link if file.suffix == ".safetensors" else shutil.copyfile)(file, tmp / file.name)
        make_portable(tmp)

    if not snapshot.is_dir():
        atomic_save(fill, snapshot)
    ref.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(ref, lambda tmp: Path(tmp).write_text(commit))
    return snapshot
