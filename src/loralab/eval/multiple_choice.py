"""Multiple choice by log-likelihood (HellaSwag, ARC, WinoGrande).

For each choice i, :meth:`MultipleChoice.scoring_pairs` gives a conditioning
text c_i and a scored text s_i (the choice itself, or for WinoGrande the
sentence after the blank). Both are tokenized without special tokens and
concatenated; the score is

    LL_i = sum over the tokens of s_i of log p(token | c_i, earlier tokens of s_i).

``acc`` picks argmax_i LL_i; ``acc_norm`` picks argmax_i LL_i / len(s_i) where
len is the number of CHARACTERS of the scored text (as lm-evaluation-harness,
which uses bytes; character counts do not depend on the tokenizer). Ties go
to the first choice. Standard errors: sqrt(p (1 - p) / n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loralab.data.problems import MultipleChoice
from loralab.eval.scoring import token_logprobs


@dataclass(frozen=True)
class ChoiceScores:
    """Per item: the summed log-likelihood and the character length of each choice's scored text."""

    loglik: list[list[float]]
    chars: list[list[int]]


def score_choices(model: Any, tokenizer: Any, items: Sequence[MultipleChoice], batch_size: int = 8) -> ChoiceScores:
    """Log-likelihood of every choice of every item."""
    rows, starts, owners, chars = [], [], [], []
    for item_index, item in enumerate(items):
        for condition, scored in item.scoring_pairs():
            context = tokenizer(condition, add_special_tokens=False)["input_ids"] or [_fallback_token(tokenizer)]
            target = tokenizer(scored, add_special_tokens=False)["input_ids"]
            rows.append(context + target)
            starts.append(len(context))
            owners.append(item_index)
            chars.append(len(scored))
    logprobs = token_logprobs(model, rows, starts, batch_size)
    loglik: list[list[float]] = [[] for _ in items]
    lengths: list[list[int]] = [[] for _ in items]
    for owner, scores, length in zip(owners, logprobs, chars):
        loglik[owner].append(float(scores.sum()))
        lengths[owner].append(length)
    return ChoiceScores(loglik, lengths)


def predictions(scores: ChoiceScores, normalise: bool) -> list[int]:
    """The chosen index per item: argmax of LL (or of LL / characters when ``normalise``)."""
    chosen = []
    for values, lengths in zip(scores.loglik, scores.chars):
        keyed = [v / max(n, 1) if normalise else v for v, n in zip(values, lengths)]
        chosen.append(max(range(len(keyed)), key=lambda i: (keyed[i], -i)))
    return chosen


def _fallback_token(tokenizer: Any) -> int:
    """A context token for an empty context (the eos, else the pad token)."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
