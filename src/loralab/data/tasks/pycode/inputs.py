"""Random test inputs for the code templates: integer lists and short sentences."""

from __future__ import annotations

import random

WORDS = (
    "apple", "Banana", "cherry", "data", "echo", "Level", "noon", "python", "racecar", "sky",
    "tree", "umbrella", "Violin", "wow", "zebra", "a", "I", "hello", "World", "quiet",
    "stream", "Moon", "river", "kayak", "object", "idea", "under", "Open", "bright", "yes",
)  # fmt: skip


def int_list(rng: random.Random, low: int = -20, high: int = 20, max_len: int = 8) -> list[int]:
    """A list of 0..max_len integers in [low, high]."""
    return [rng.randint(low, high) for _ in range(rng.randint(0, max_len))]


def sentence(rng: random.Random, max_words: int = 7) -> str:
    """1..max_words words joined by single spaces."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, max_words)))


def list_cases(rng: random.Random, count: int = 5, **options: int) -> tuple[tuple[list[int]], ...]:
    """One non-trivial list, an empty list, then random lists, each as a 1-argument case."""
    first = [rng.randint(-9, 9) for _ in range(5)]
    return ((first,), ([],), *((int_list(rng, **options),) for _ in range(count - 2)))


def text_cases(rng: random.Random, count: int = 5) -> tuple[tuple[str], ...]:
    """A several-word sentence, one word, then random sentences, each as a 1-argument case."""
    first = " ".join(rng.sample(WORDS, 4))
    return ((first,), (rng.choice(WORDS),), *((sentence(rng),) for _ in range(count - 2)))
