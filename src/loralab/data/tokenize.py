"""Tokenizing rendered segments into examples with a loss mask, and truncating them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loralab.data.records import IGNORE_INDEX, TokenizedExample
from loralab.data.render import Segment


def token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, with no special tokens added (templates write their own)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def tokenize_segments(
    tokenizer: Any, rendered: Sequence[Sequence[Segment]], *, train_on_prompt: bool = False
) -> list[TokenizedExample]:
    """One example per segment list; each segment is tokenized on its own, so the mask is exact.

    Tokens of trained segments keep their id as label; the others get -100
    unless ``train_on_prompt`` is set, in which case every token is trained.
    """
    flat = token_ids(tokenizer, [segment.text for segments in rendered for segment in segments])
    examples, position = [], 0
    for segments in rendered:
        input_ids: list[int] = []
        labels: list[int] = []
        for segment in segments:
            ids = flat[position]
            position += 1
            input_ids += ids
            labels += ids if (segment.trained or train_on_prompt) else [IGNORE_INDEX] * len(ids)
        examples.append(TokenizedExample(input_ids, labels))
    return examples


def truncate(example: TokenizedExample, max_length: int) -> tuple[TokenizedExample, int]:
    """The example cut to its first ``max_length`` tokens, and how many tokens were cut."""
    cut = max(0, len(example) - max_length)
    if not cut:
        return example, 0
    return TokenizedExample(example.input_ids[:max_length], example.labels[:max_length]), cut


def has_trained_target(example: TokenizedExample) -> bool:
    """Whether any token after the first is trained (a causal LM never predicts position 0)."""
    return any(label != IGNORE_INDEX for label in example.labels[1:])
