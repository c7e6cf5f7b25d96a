"""Progress bars (tqdm on stderr) that can be switched off."""

from __future__ import annotations

from typing import Any


def bar(total: int, description: str, enabled: bool, **kwargs: Any):
    """A tqdm bar of ``total`` units (disabled: a silent one with the same interface)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=not enabled, leave=False, **kwargs)
