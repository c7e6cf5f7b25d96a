"""Progress bars (tqdm on stderr, one step per matrix) that can be switched off."""

from __future__ import annotations


def progress_bar(total: int, description: str, enabled: bool = True):
    """A tqdm bar of ``total`` matrices (disabled: a silent one with the same interface)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="matrix", disable=not enabled, leave=False)
