"""Decide what a model name or path refers to, before anything heavy is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loralab.errors import ModelLoadError
from loralab.models.bundled import is_bundled_name
from loralab.models.hub import is_hub_id
from loralab.models.tiny import TINY_KINDS

SourceKind = Literal["tiny", "bundled", "gguf", "folder", "hub"]
TINY_PREFIX = "tiny-"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from. ``location``: tiny kind, GGUF file, model folder or hub id ("" when bundled)."""

    kind: SourceKind
    location: str


def _looks_like_path(name: str) -> bool:
    """Paths, unlike hub ids, may start with / . ~, hold a backslash or several slashes, or end in .gguf."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or name.lower().endswith(".gguf")


def _local_source(path: Path) -> ModelSource:
    """A GGUF file or a Hugging Face model folder; anything else is a user mistake."""
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return ModelSource("gguf", str(path))
        raise ModelLoadError(
            f"{path} is a file but not a .gguf file. Pass a .gguf file or a model folder with config.json."
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"The folder {path} has no config.json, so it is not a Hugging Face model folder. "
            "Pass the folder that holds config.json and the weights (e.g. one written by save_pretrained)."
        )
    return ModelSource("folder", str(path))


def resolve_source(name_or_path: str | Path) -> ModelSource:
    """Classify ``name_or_path``: tiny-<kind>, the bundled model, an existing file/folder, or a hub id."""
    name = str(name_or_path).strip()
    if not name:
        raise ModelLoadError("No model given. Pass 'smollm2-135m-instruct', a model folder, a .gguf file or a hub id.")
    if name.lower().startswith(TINY_PREFIX) and not isinstance(name_or_path, Path):
        kind = name.lower().removeprefix(TINY_PREFIX)
        if kind not in TINY_KINDS:
            names = ", ".join(TINY_PREFIX + k for k in TINY_KINDS)
            raise ModelLoadError(f"Unknown tiny model '{name}'. Choose one of: {names}.")
        return ModelSource("tiny", kind)
    if is_bundled_name(name) and not isinstance(name_or_path, Path):
        return ModelSource("bundled", "")
    path = Path(name).expanduser()
    if path.exists():
        return _local_source(path)
    if isinstance(name_or_path, Path) or _looks_like_path(name) or not is_hub_id(name):
        raise ModelLoadError(
            f"Model path '{name}' does not exist (and it is not a valid Hugging Face hub id either). "
            "Check the spelling, or use 'smollm2-135m-instruct' for the bundled model."
        )
    return ModelSource("hub", name)
