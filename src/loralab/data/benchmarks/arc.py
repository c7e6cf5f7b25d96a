"""ARC (AI2 Reasoning Challenge) -> MultipleChoice with context ``"Question: <stem>\\nAnswer:"``.

Accepts the original layout ``{"question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}``
and the Hugging Face layout ``{"question": str, "choices": {"label": [...], "text": [...]}, "answerKey"}``.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_field, require_text
from loralab.data.problems import MultipleChoice


def read_arc(path: str | PathLike) -> list[MultipleChoice]:
    """ARC items; ``answerKey`` names the correct choice's label (``"A"``..., or ``"1"``...)."""
    return [parse_arc(row.fields, row.where) for row in benchmark_rows(path, "ARC")]


def parse_arc(fields: dict, where: str) -> MultipleChoice:
    """One row in either layout."""
    question = require_field(fields, "question", where)
    if isinstance(question, dict):
        stem = require_text(question, "stem", f"{where} (question)")
        labels, texts = _original_choices(require_field(question, "choices", f"{where} (question)"), where)
    else:
        stem = require_text(fields, "question", where)
        labels, texts = _flat_choices(require_field(fields, "choices", where), where)
    key = str(require_field(fields, "answerKey", where)).strip()
    if key not in labels:
        raise fail(where, f"answerKey {key!r} is not one of the choice labels {labels}")
    return MultipleChoice(f"Question: {stem}\nAnswer:", tuple(texts), labels.index(key))


def _original_choices(choices: Any, where: str) -> tuple[list[str], list[str]]:
    if not isinstance(choices, list) or len(choices) < 2:
        raise fail(where, "question.choices must be a list of at least two {\"label\", \"text\"} objects")
    pairs = []
    for number, choice in enumerate(choices, start=1):
        if not isinstance(choice, dict):
            raise fail(where, f"choice {number} must be an object with 'label' and 'text'")
        pairs.append((str(require_field(choice, "label", f"{where} (choice {number})")),
                      require_text(choice, "text", f"{where} (choice {number})")))  # fmt: skip
    return [label for label, _ in pairs], [text for _, text in pairs]


def _flat_choices(choices: Any, where: str) -> tuple[list[str], list[str]]:
    if not isinstance(choices, dict):
        raise fail(where, "field 'choices' must be {\"label\": [...], \"text\": [...]}")
    labels, texts = require_field(choices, "label", where), require_field(choices, "text", where)
    if not isinstance(labels, list) or not isinstance(texts, list) or len(labels) != len(texts) or len(texts) < 2:
        raise fail(where, "choices.label and choices.text must be lists of the same length (at least two)")
    if not all(isinstance(text, str) and text.strip() for text in texts):
        raise fail(where, "every choice text must be a non-empty string")
    return [str(label) for label in labels], texts
