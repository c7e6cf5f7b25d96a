"""Packing tokenized documents into fixed-length blocks for continued pretraining."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loralab.errors import ConfigError


@dataclass
class PackedBlocks:
    """Blocks of ``block_size`` tokens (plus, if kept, one shorter last block).

    ``partial_tokens`` counts the tokens of the last incomplete block;
    ``partial_kept`` says whether that block is in ``blocks`` or was dropped.
    """

    blocks: list[list[int]]
    partial_tokens: int
    partial_kept: bool


def pack_documents(
    documents: Sequence[Sequence[int]], *, eos_id: int, block_size: int, keep_partial: bool = False
) -> PackedBlocks:
    """Join documents into one stream, each followed by ``eos_id``, and cut it into blocks.

    Every token of the stream appears exactly once, in order: in the blocks,
    or in the dropped last partial block when ``keep_partial`` is false.
    """
    if block_size < 1:
        raise ConfigError(f"block_size must be a positive number of tokens, got {block_size}.")
    stream: list[int] = []
    for document in documents:
        stream.extend(document)
        stream.append(eos_id)
    full = len(stream) - len(stream) % block_size
    blocks = [stream[start : start + block_size] for start in range(0, full, block_size)]
    partial = stream[full:]
    if partial and keep_partial:
        blocks.append(partial)
    return PackedBlocks(blocks, len(partial), bool(partial) and keep_partial)
