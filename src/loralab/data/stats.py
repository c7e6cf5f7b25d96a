"""Counts describing how a dataset was built: what was truncated, dropped or packed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BuildStats:
    """What :func:`build_dataset` did with its records.

    Instruction and chat data: ``truncated`` examples were cut to max_length
    and kept; ``dropped`` ones were removed because no trained token survived
    the cut; ``truncated_tokens`` counts the tokens cut from both.
    Raw text: ``blocks`` full-size blocks were packed; ``partial_block_tokens``
    tokens formed a shorter last block, kept only if ``partial_block_kept``.
    """

    format: str
    records: int
    examples: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    truncated: int = 0
    dropped: int = 0
    truncated_tokens: int = 0
    blocks: int = 0
    partial_block_tokens: int = 0
    partial_block_kept: bool = False

    def summary(self) -> str:
        """One line for logs."""
        head = f"{self.records} {self.format} records -> {self.examples} examples, {self.tokens} tokens"
        if self.format == "text":
            fate = "kept" if self.partial_block_kept else "dropped"
            return f"{head} in {self.blocks} full blocks; last partial block of {self.partial_block_tokens} tokens {fate}"
        return (
            f"{head} ({self.trained_tokens} trained); {self.truncated} truncated, {self.dropped} dropped "
            f"({self.truncated_tokens} tokens cut)"
        )
