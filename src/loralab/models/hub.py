"""Hugging Face hub ids: the local HF cache first, the network only if the hub answers quickly."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from loralab.errors import ModelLoadError

REACH_TIMEOUT_S = 3.0


def is_hub_id(name: str) -> bool:
    """Whether ``name`` is a well-formed hub id: ``name`` or ``namespace/name``."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def hub_offline() -> bool:
    """Whether the user switched the hub off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return constants.HF_HUB_OFFLINE or any(str(flag).upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def hub_endpoint() -> str:
    """The hub's base URL (``HF_ENDPOINT``, read now rather than at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT)


def hub_reachable(timeout_s: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout_s`` (DNS included: run in a thread)."""
    url = urlparse(hub_endpoint())
    address = (url.hostname or "", url.port or (80 if url.scheme == "http" else 443))
    opened: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout_s).close()
            opened.append(True)
        except OSError:
            pass

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(timeout_s)  # a refused or unresolvable address returns at once
    return bool(opened)


def local_snapshot(repo_id: str) -> str | None:
    """The folder of ``repo_id`` in the local HF cache, or None if it was never downloaded (no network used)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except LocalEntryNotFoundError:
        return None


def resolve_hub_id(repo_id: str) -> str:
    """A local folder for ``repo_id`` if cached, else ``repo_id`` itself when the hub can be reached.

    Raises ModelLoadError quickly (within ``REACH_TIMEOUT_S``) when it is neither.
    """
    from huggingface_hub import constants

    folder = local_snapshot(repo_id)
    if folder is not None:
        return folder
    why = "HF_HUB_OFFLINE is set" if hub_offline() else None
    if why is None and not hub_reachable():
        why = f"the hub ({hub_endpoint()}) is unreachable from here"
    if why is not None:
        raise ModelLoadError(
            f"Model '{repo_id}' is not a local file or folder, it is not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}), and it cannot be downloaded: {why}. Download it on a machine with "
            "network access, or pass the path of a local model folder or .gguf file."
        )
    return repo_id
