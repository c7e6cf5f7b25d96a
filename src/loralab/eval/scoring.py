"""Log-probabilities of given tokens under a causal LM, in right-padded batches.

For a row ``x`` of length L and a start ``s`` (1 <= s), the scores are
``log p(x_t | x_<t)`` for t = s .. L-1, from log_softmax of float32 logits
(shape (batch, L, vocab)), returned as float64 tensors of length L - s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from loralab.errors import ConfigError


def token_logprobs(model: Any, rows: Sequence[Sequence[int]], starts: Sequence[int], batch_size: int = 8) -> list[torch.Tensor]:
    """For each row, log-probabilities (float64, shape (L - start,)) of its tokens from ``start`` on."""
    results: list[torch.Tensor] = [torch.zeros(0, dtype=torch.float64)] * len(rows)
    for chunk, logits in batched_logits(model, rows, batch_size):
        logprobs = torch.log_softmax(logits, dim=-1)
        for position, index in enumerate(chunk):
            row, start = rows[index], starts[index]
            if not 1 <= start <= len(row):
                raise ConfigError(f"A scored span must start after the first token: start {start}, row length {len(row)}.")
            targets = torch.tensor(row[start:], dtype=torch.long).to(logprobs.device, non_blocking=True)
            picked = logprobs[position, start - 1 : len(row) - 1].gather(-1, targets[:, None])[:, 0]
            results[index] = picked.double()  # left on the device until every batch is queued
    return [scores.cpu() for scores in results]


def batched_logits(model: Any, rows: Sequence[Sequence[int]], batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
    """``(indices, logits)`` per batch of rows sorted by length; logits are float32, right padded."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size}.")
    order = sorted((i for i in range(len(rows)) if rows[i]), key=lambda i: -len(rows[i]))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(rows[i]) for i in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for position, index in enumerate(chunk):
            ids[position, : len(rows[index])] = torch.tensor(list(rows[index]))
            mask[position, : len(rows[index])] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        yield chunk, logits.float()


def windows(ids: Sequence[int], length: int) -> list[list[int]]:
    """Consecutive non-overlapping windows of ``length`` tokens (the last may be shorter)."""
    if length < 2:
        raise ConfigError(f"The perplexity window must hold at least 2 tokens, got {length}.")
    return [list(ids[i : i + length]) for i in range(0, len(ids), length)]
