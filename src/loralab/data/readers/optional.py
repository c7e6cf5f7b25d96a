"""Importing a package that only some file formats need, with an install hint if it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from loralab.errors import DataError


def import_for(module: str, package: str, purpose: str) -> ModuleType:
    """``import module``; DataError telling how to install ``package`` if it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"{purpose} needs the '{package}' package, which is not installed: pip install {package}") from None
