"""Building a tokenized training set from a data file or a list of records."""

from __future__ import annotations

from typing import Any

import torch

from loralab.data.formats import format_of
from loralab.data.load import Source, located_records
from loralab.data.packing import pack_documents
from loralab.data.records import IGNORE_INDEX, Record, TextRecord, TokenizedExample
from loralab.data.render import record_segments
from loralab.data.stats import BuildStats
from loralab.data.tokenize import has_trained_target, token_ids, tokenize_segments, truncate
from loralab.errors import ConfigError, DataError


class TokenizedDataset(torch.utils.data.Dataset):
    """Examples ready for :class:`~loralab.data.collate.PaddingCollator`, with the :class:`BuildStats`."""

    def __init__(self, examples: list[TokenizedExample], stats: BuildStats):
        self.examples = examples
        self.stats = stats

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> TokenizedExample:
        return self.examples[index]

    def __iter__(self):
        return iter(self.examples)


def build_dataset(
    source: Source,
    tokenizer: Any,
    *,
    max_length: int = 512,
    train_on_prompt: bool = False,
    block_size: int | None = None,
    keep_partial_block: bool = False,
) -> TokenizedDataset:
    """Load, validate and tokenize ``source`` (a path, or a list of records or row dicts).

    Instruction and chat records become one example each (at most
    ``max_length`` tokens) trained on the assistant responses only, or on all
    tokens with ``train_on_prompt``. Raw text records are packed into blocks of
    ``block_size`` tokens (default ``max_length``), EOS after each document.
    """
    _check_positive("max_length", max_length)
    located = located_records(source)
    fmt = format_of(located[0][1])
    if fmt == "preference":
        raise DataError(f"{located[0][0]}: these are preference pairs (chosen/rejected): build them with "
                        "build_preference_dataset, or train with data.regime: preference and train.objective: dpo")  # fmt: skip
    if fmt == "text":
        size = max_length if block_size is None else _check_positive("block_size", block_size)
        return _packed_text([record for _, record in located], tokenizer, size, keep_partial_block)
    if block_size is not None:
        raise ConfigError(
            f"block_size applies to raw text data only; this data is in {fmt} format. Use max_length to limit length."
        )
    return _supervised(located, tokenizer, fmt, max_length, train_on_prompt)


def _supervised(
    located: list[tuple[str, Record]], tokenizer: Any, fmt: str, max_length: int, train_on_prompt: bool
) -> TokenizedDataset:
    rendered = [record_segments(tokenizer, record, where) for where, record in located]
    stats = BuildStats(format=fmt, records=len(located))
    examples = []
    for example in tokenize_segments(tokenizer, rendered, train_on_prompt=train_on_prompt):
        example, cut = truncate(example, max_length)
        stats.truncated_tokens += cut
        if not has_trained_target(example):
            stats.dropped += 1
            continue
        stats.truncated += bool(cut)
        examples.append(example)
    if not examples:
        raise DataError(
            f"No usable examples: all {stats.dropped} were dropped because max_length={max_length} cuts off "
            "every response. Raise max_length or shorten the prompts."
        )
    return TokenizedDataset(examples, _count_tokens(stats, examples))


def _packed_text(records: list[Record], tokenizer: Any, block_size: int, keep_partial: bool) -> TokenizedDataset:
    if tokenizer.eos_token_id is None:
        raise DataError("Packing raw text needs an EOS token between documents, and this tokenizer has none.")
    documents = token_ids(tokenizer, [record.text for record in records if isinstance(record, TextRecord)])
    packed = pack_documents(documents, eos_id=tokenizer.eos_token_id, block_size=block_size, keep_partial=keep_partial)
    if not packed.blocks:
        raise DataError(
            f"No usable blocks: the {packed.partial_tokens} tokens of text are fewer than block_size={block_size}. "
            "Add text or lower block_size (in a recipe: data.block_size); from Python, "
            "build_dataset(..., keep_partial_block=True) also keeps a short last block."
        )
    examples = [TokenizedExample(block, list(block)) for block in packed.blocks]
    stats = BuildStats(
        format="text",
        records=len(records),
        blocks=len(packed.blocks) - packed.partial_kept,
        partial_block_tokens=packed.partial_tokens,
        partial_block_kept=packed.partial_kept,
    )
    return TokenizedDataset(examples, _count_tokens(stats, examples))


def _count_tokens(stats: BuildStats, examples: list[TokenizedExample]) -> BuildStats:
    stats.examples = len(examples)
    stats.tokens = sum(len(example) for example in examples)
    stats.trained_tokens = sum(label != IGNORE_INDEX for example in examples for label in example.labels)
    return stats


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive number of tokens, got {value!r}.")
    return value
