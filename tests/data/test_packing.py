"""Packing raw text: every token once, in order, EOS after each document; the partial block counted."""

import json
import random
from pathlib import Path

import pytest

from loralab.data import TextRecord, build_dataset, pack_documents
from loralab.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures"
EOS = 0


def random_documents(seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(1, 999) for _ in range(rng.randint(1, 40))] for _ in range(rng.randint(1, 12))]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block_size", [1, 7, 16, 1000])
@pytest.mark.parametrize("keep_partial", [False, True])
def test_every_token_once_in_order(seed, block_size, keep_partial):
    documents = random_documents(seed)
    packed = pack_documents(documents, eos_id=EOS, block_size=block_size, keep_partial=keep_partial)
    stream = [token for document in documents for token in [*document, EOS]]
    flat = [token for block in packed.blocks for token in block]
    full_blocks = packed.blocks[:-1] if packed.partial_kept else packed.blocks
    assert all(len(block) == block_size for block in full_blocks)
    assert packed.partial_tokens == len(stream) % block_size
    if keep_partial:
        assert flat == stream
        assert packed.partial_kept == (packed.partial_tokens > 0)
    else:
        assert flat == stream[: len(stream) - packed.partial_tokens]
        assert not packed.partial_kept


def test_eos_separates_documents():
    packed = pack_documents([[5, 6], [7], [8, 9, 10]], eos_id=EOS, block_size=4, keep_partial=True)
    assert packed.blocks == [[5, 6, EOS, 7], [EOS, 8, 9, 10], [EOS]]


def test_bad_block_size():
    with pytest.raises(ConfigError):
        pack_documents([[1]], eos_id=EOS, block_size=0)


@pytest.mark.parametrize("keep_partial", [False, True])
def test_build_dataset_packs_text_file(smol_tokenizer, keep_partial):
    texts = [json.loads(line)["text"] for line in (FIXTURES / "text.jsonl").read_text().splitlines()]
    stream = []
    for text in texts:
        stream += smol_tokenizer(text, add_special_tokens=False)["input_ids"] + [smol_tokenizer.eos_token_id]
    block = 8
    dataset = build_dataset(FIXTURES / "text.jsonl", smol_tokenizer, block_size=block, keep_partial_block=keep_partial)
    flat = [token for example in dataset for token in example.input_ids]
    assert all(example.labels == example.input_ids for example in dataset)
    assert dataset.stats.partial_block_tokens == len(stream) % block
    assert dataset.stats.blocks == len(stream) // block
    assert flat == (stream if keep_partial else stream[: len(stream) // block * block])
    assert smol_tokenizer.decode(stream) == smol_tokenizer.eos_token.join(texts) + smol_tokenizer.eos_token


def test_block_size_defaults_to_max_length(smol_tokenizer):
    dataset = build_dataset([TextRecord("word " * 200)], smol_tokenizer, max_length=32)
    assert {len(example) for example in dataset} == {32}


def test_text_shorter_than_one_block(smol_tokenizer):
    with pytest.raises(DataError, match="fewer than block_size"):
        build_dataset([TextRecord("tiny")], smol_tokenizer, block_size=512)
