"""Diversity of sampled generations for one prompt.

``distinct_solutions``: the number of different texts among the samples after
stripping whitespace at both ends and collapsing runs of whitespace.
``distinct_n``: distinct n-grams / total n-grams over all samples of the prompt
(whitespace tokens), in [0, 1]; 0 when there are no n-grams. Report the mean
over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence


def normalise(text: str) -> str:
    """Whitespace-insensitive form used to compare two solutions."""
    return " ".join(text.split())


def distinct_solutions(samples: Sequence[str]) -> int:
    """How many different solutions the samples contain."""
    return len({normalise(sample) for sample in samples})


def distinct_n(samples: Sequence[str], n: int) -> float:
    """Distinct n-grams over total n-grams across ``samples`` (whitespace tokenization)."""
    grams = [tuple(words[i : i + n]) for words in (s.split() for s in samples) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
