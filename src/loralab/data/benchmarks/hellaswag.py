"""HellaSwag: ``{"ctx", "endings": [4 strings], "label"}`` -> MultipleChoice (context = ctx)."""

from __future__ import annotations

from os import PathLike

from loralab.data.benchmarks.choice_label import label_index
from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_field, require_text
from loralab.data.problems import MultipleChoice


def read_hellaswag(path: str | PathLike) -> list[MultipleChoice]:
    """HellaSwag items; the label may be an int or a digit string."""
    return [parse_hellaswag(row.fields, row.where) for row in benchmark_rows(path, "HellaSwag")]


def parse_hellaswag(fields: dict, where: str) -> MultipleChoice:
    """One row: the endings are the choices scored after ``ctx``."""
    context = require_text(fields, "ctx", where)
    endings = require_field(fields, "endings", where)
    if not isinstance(endings, list) or len(endings) < 2 or not all(isinstance(e, str) and e.strip() for e in endings):
        raise fail(where, "field 'endings' must be a list of at least two non-empty strings")
    return MultipleChoice(context, tuple(endings), label_index(fields, "label", where, len(endings)))
