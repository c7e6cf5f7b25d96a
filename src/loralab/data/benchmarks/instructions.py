"""Instruction-tuning sets: MetaMathQA (math) and Magicoder (code), read as InstructionRecords."""

from __future__ import annotations

from os import PathLike

from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_text
from loralab.data.records import InstructionRecord

MAGICODER_KEYS = (("problem", "solution"), ("instruction", "response"))


def read_metamathqa(path: str | PathLike) -> list[InstructionRecord]:
    """MetaMathQA rows ``{"query", "response", ...}``: prompt = query, response = response."""
    return [
        InstructionRecord(require_text(row.fields, "query", row.where), require_text(row.fields, "response", row.where))
        for row in benchmark_rows(path, "MetaMathQA")
    ]


def read_magicoder(path: str | PathLike) -> list[InstructionRecord]:
    """Magicoder rows: OSS-Instruct ``{"problem", "solution"}`` or Evol-Instruct ``{"instruction", "response"}``."""
    return [_magicoder(row.fields, row.where) for row in benchmark_rows(path, "Magicoder")]


def _magicoder(fields: dict, where: str) -> InstructionRecord:
    for prompt_key, response_key in MAGICODER_KEYS:
        if prompt_key in fields:
            return InstructionRecord(require_text(fields, prompt_key, where), require_text(fields, response_key, where))
    expected = " or ".join(f"{a!r}/{b!r}" for a, b in MAGICODER_KEYS)
    raise fail(where, f"not a Magicoder row: expected fields {expected}, got {', '.join(map(repr, fields))}")
