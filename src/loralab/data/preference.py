"""Building a tokenized preference (DPO) set: each pair becomes two examples sharing their prompt tokens.

A side is rendered exactly as an instruction (or, with a history, a chat) record is by
:func:`~loralab.data.dataset.build_dataset`, then labelled on its final answer only: the prompt,
the history (earlier assistant turns included) and the template's context tokens carry -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import torch

from loralab.data.dataset import _check_positive, _count_tokens
from loralab.data.fields import fail
from loralab.data.formats import MARKERS, format_of
from loralab.data.load import Source, located_records
from loralab.data.records import ChatRecord, InstructionRecord, PreferenceRecord, TokenizedExample
from loralab.data.render import Segment, record_segments
from loralab.data.stats import BuildStats
from loralab.data.tokenize import has_trained_target, tokenize_segments, truncate
from loralab.errors import DataError


@dataclass
class PreferenceStats(BuildStats):
    """:class:`BuildStats` of a preference set, counted in pairs.

    ``records`` pairs were read, ``pairs`` kept; ``examples`` = 2 × ``pairs`` sequences
    (``tokens``, ``trained_tokens`` cover both sides). ``truncated`` kept pairs had a side cut
    to max_length; ``dropped`` pairs lost a whole answer to the cut; ``truncated_tokens``
    counts the tokens cut from every side, dropped pairs included.
    """

    pairs: int = 0

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"{self.records} preference records -> {self.pairs} pairs ({self.examples} sequences), {self.tokens} "
            f"tokens ({self.trained_tokens} trained); {self.truncated} truncated, {self.dropped} dropped "
            f"({self.truncated_tokens} tokens cut)"
        )


def pair_rows(pad: Any, pairs: Sequence[dict[str, TokenizedExample]]) -> dict[str, torch.Tensor]:
    """P pairs → one padded batch of 2P rows: the P chosen sides, then the P rejected ones, in order."""
    return pad([pair["chosen"] for pair in pairs] + [pair["rejected"] for pair in pairs])


class PreferenceDataset(torch.utils.data.Dataset):
    """Pairs ``{"chosen": example, "rejected": example}`` for the DPO collator, with :class:`PreferenceStats`."""

    def __init__(self, pairs: list[dict[str, TokenizedExample]], stats: PreferenceStats):
        self.pairs = pairs
        self.stats = stats

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, TokenizedExample]:
        return self.pairs[index]

    def __iter__(self):
        return iter(self.pairs)


def load_preference_records(source: Source) -> list[PreferenceRecord]:
    """Validated pairs from a data file, or from a list of :class:`PreferenceRecord` / row mappings."""
    return [record for _, record in located_pairs(source)]


def located_pairs(source: Source) -> list[tuple[str, PreferenceRecord]]:
    """``(where, record)`` for every pair; hand-built records are validated as rows are."""
    if isinstance(source, Sequence) and not isinstance(source, (str, PathLike)):
        source = [item.as_row() if isinstance(item, PreferenceRecord) else item for item in source]
    located = located_records(source)
    where, first = located[0]
    if not isinstance(first, PreferenceRecord):
        keys = "/".join(MARKERS["preference"])
        raise fail(where, f"this row is in {format_of(first)} format, not a preference pair", f"Give each row {keys}.")
    return [(where, record) for where, record in located if isinstance(record, PreferenceRecord)]


def build_preference_dataset(source: Source, tokenizer: Any, *, max_length: int = 512) -> PreferenceDataset:
    """Load, validate and tokenize preference pairs; each side is at most ``max_length`` tokens.

    A pair is dropped when the cut leaves either side without a trained token; DataError if none is left.
    """
    _check_positive("max_length", max_length)
    located = located_pairs(source)
    rendered = [segments for where, record in located for segments in pair_segments(tokenizer, record, where)]
    sides = iter(tokenize_segments(tokenizer, rendered))
    stats = PreferenceStats(format="preference", records=len(located))
    pairs = []
    for chosen, rejected in zip(sides, sides):
        (chosen, chosen_cut), (rejected, rejected_cut) = truncate(chosen, max_length), truncate(rejected, max_length)
        stats.truncated_tokens += chosen_cut + rejected_cut
        if not (has_trained_target(chosen) and has_trained_target(rejected)):
            stats.dropped += 1
            continue
        stats.truncated += bool(chosen_cut or rejected_cut)
        pairs.append({"chosen": chosen, "rejected": rejected})
    if not pairs:
        raise DataError(
            f"No usable preference pairs: all {stats.dropped} were dropped because max_length={max_length} cuts off "
            "an answer of every pair. Raise max_length or shorten the prompts."
        )
    stats.pairs = len(pairs)
    _count_tokens(stats, [pair[side] for pair in pairs for side in ("chosen", "rejected")])
    return PreferenceDataset(pairs, stats)


def pair_segments(tokenizer: Any, record: PreferenceRecord, where: str) -> tuple[list[Segment], list[Segment]]:
    """(chosen, rejected) rendered; identical up to the answer, which is the only trained segment."""
    return (
        answer_segments(tokenizer, record, record.chosen, where),
        answer_segments(tokenizer, record, record.rejected, where),
    )


def answer_segments(tokenizer: Any, record: PreferenceRecord, answer: str, where: str) -> list[Segment]:
    """``answer`` after the record's prompt and history, rendered as instruction / chat records are."""
    side = ChatRecord(record.conversation(answer)) if record.history else InstructionRecord(record.prompt, answer)
    segments = record_segments(tokenizer, side, where)
    last = max(index for index, segment in enumerate(segments) if segment.trained)
    return [Segment(segment.text, segment.trained and index == last) for index, segment in enumerate(segments)]
