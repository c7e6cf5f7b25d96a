"""Truncation to max_length: counts of truncated and dropped examples match a recomputation."""

import pytest

from loralab.data import IGNORE_INDEX, InstructionRecord, build_dataset
from loralab.errors import ConfigError, DataError

RECORDS = [
    InstructionRecord("Short question?", "Short answer."),
    InstructionRecord("Tell me about rivers.", " ".join(["Rivers flow to the sea."] * 12)),
    InstructionRecord(" ".join(["This prompt is very long."] * 20), "Cut off."),
    InstructionRecord("Medium question about lakes?", "Lakes are still water, often fed by rivers."),
]


def first_trained(example) -> int:
    return next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)


@pytest.mark.parametrize("max_length", [40, 60, 90])
def test_counts_match_recomputation_from_full_examples(smol_tokenizer, max_length):
    full = build_dataset(RECORDS, smol_tokenizer, max_length=100_000)
    assert full.stats.truncated == full.stats.dropped == full.stats.truncated_tokens == 0
    kept = [e for e in full if first_trained(e) < max_length]
    expected_dropped = len(full) - len(kept)
    expected_truncated = sum(len(e) > max_length for e in kept)
    expected_cut = sum(max(0, len(e) - max_length) for e in full)
    assert 0 < expected_dropped and 0 < expected_truncated  # the cases this test is about occur

    cut = build_dataset(RECORDS, smol_tokenizer, max_length=max_length)
    assert cut.stats.dropped == expected_dropped
    assert cut.stats.truncated == expected_truncated
    assert cut.stats.truncated_tokens == expected_cut
    assert cut.stats.records == len(RECORDS) and cut.stats.examples == len(cut) == len(kept)
    for short, long in zip(cut, kept):
        assert len(short) == min(len(long), max_length)
        assert short.input_ids == long.input_ids[: len(short)]
        assert short.labels == long.labels[: len(short)]
    assert cut.stats.tokens == sum(len(e) for e in cut)
    assert cut.stats.trained_tokens == sum(label != IGNORE_INDEX for e in cut for label in e.labels)


def test_all_responses_cut_off_is_an_error(smol_tokenizer):
    with pytest.raises(DataError, match="No usable examples"):
        build_dataset(RECORDS[2:3], smol_tokenizer, max_length=20)


@pytest.mark.parametrize("value", [0, -5, 2.5, True])
def test_bad_max_length(smol_tokenizer, value):
    with pytest.raises(ConfigError, match="max_length"):
        build_dataset(RECORDS, smol_tokenizer, max_length=value)


def test_block_size_is_for_raw_text_only(smol_tokenizer):
    with pytest.raises(ConfigError, match="block_size applies to raw text"):
        build_dataset(RECORDS, smol_tokenizer, block_size=64)
