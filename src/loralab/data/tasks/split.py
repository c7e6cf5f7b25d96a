"""Seeded sampling of unique items on one side of a fixed, hash-based train/test split.

An item belongs to the test side when the SHA-256 of its key falls in the
first ``test_percent`` of 100 buckets. Membership depends on the key alone, so
train and test never share a key, whatever the seeds.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import TypeVar

from loralab.errors import DataError

T = TypeVar("T")
SPLITS = ("train", "test")


def is_test_key(key: str, test_percent: int) -> bool:
    """Whether ``key`` lies on the test side of the split (``test_percent`` in 1..99)."""
    if isinstance(test_percent, bool) or not isinstance(test_percent, int) or not 0 < test_percent < 100:
        raise DataError(f"test_percent must be an integer from 1 to 99, got {test_percent!r}.")
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    return bucket < test_percent


def sample_unique(
    make: Callable[[random.Random], T],
    key: Callable[[T], str],
    *,
    n: int,
    split: str,
    seed: str,
    test_percent: int,
    what: str,
    tries_per_item: int = 200,
) -> list[T]:
    """``n`` items with distinct keys from the ``split`` side, drawn by ``make`` from a ``seed``-ed stream."""
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"The number of {what} must be a non-negative integer, got {n!r}.")
    rng = random.Random(f"{seed}/{split}")
    want_test = split == "test"
    items: list[T] = []
    seen: set[str] = set()
    for _ in range(max(1, n) * tries_per_item):
        if len(items) == n:
            break
        item = make(rng)
        item_key = key(item)
        if item_key not in seen and is_test_key(item_key, test_percent) == want_test:
            seen.add(item_key)
            items.append(item)
    if len(items) < n:
        raise DataError(f"Only {len(items)} distinct {what} could be generated for the {split} split; ask for fewer.")
    return items
