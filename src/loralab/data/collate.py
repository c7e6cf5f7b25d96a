"""Batching examples: right-padding to the longest sequence of the batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch

from loralab.data.records import IGNORE_INDEX, TokenizedExample
from loralab.errors import DataError

Item = Union[TokenizedExample, Mapping[str, Sequence[int]]]


@dataclass(frozen=True)
class PaddingCollator:
    """Turns a list of examples into ``input_ids``, ``attention_mask``, ``labels`` tensors.

    All three are int64 of shape (batch, seq), seq being the longest example
    (rounded up to ``pad_to_multiple_of`` if set). Padding is on the right:
    ``pad_id`` in input_ids, 0 in attention_mask, -100 in labels. Items are
    :class:`TokenizedExample` or mappings with ``input_ids`` and ``labels``.
    """

    pad_id: int
    pad_to_multiple_of: int | None = None

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, pad_to_multiple_of: int | None = None) -> PaddingCollator:
        """A collator padding with the tokenizer's pad token, or its EOS token when it has none."""
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise DataError("The tokenizer has neither a pad token nor an EOS token to pad batches with.")
        return cls(int(pad_id), pad_to_multiple_of)

    def __call__(self, batch: Sequence[Item]) -> dict[str, torch.Tensor]:
        if not batch:
            raise DataError("Cannot collate an empty batch.")
        pairs = [_ids_and_labels(item) for item in batch]
        width = self._width(max(len(ids) for ids, _ in pairs))
        input_ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(pairs), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (ids, targets) in enumerate(pairs):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            labels[row, : len(ids)] = torch.tensor(targets, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def _width(self, longest: int) -> int:
        step = self.pad_to_multiple_of or 1
        return -(-longest // step) * step


def _ids_and_labels(item: Item) -> tuple[Sequence[int], Sequence[int]]:
    if isinstance(item, TokenizedExample):
        ids, labels = item.input_ids, item.labels
    else:
        ids, labels = item["input_ids"], item.get("labels", item["input_ids"])
    if len(ids) != len(labels):
        raise DataError(f"An example has {len(ids)} input ids but {len(labels)} labels; they must match.")
    if not ids:
        raise DataError("Cannot collate an empty example (no tokens).")
    return ids, labels
