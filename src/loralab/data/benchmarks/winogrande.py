"""WinoGrande: ``{"sentence" with one "_", "option1", "option2", "answer": "1" | "2"}``.

Each option fills the blank. In the MultipleChoice record, ``context`` is the
sentence before the blank, ``choices`` the two options and ``suffix`` the
sentence after the blank: the option is scored by the likelihood of the
suffix after ``context + option`` (the usual partial scoring).
"""

from __future__ import annotations

from os import PathLike

from loralab.data.benchmarks.choice_label import label_index
from loralab.data.benchmarks.rows import benchmark_rows
from loralab.data.fields import fail, require_text
from loralab.data.problems import MultipleChoice


def read_winogrande(path: str | PathLike) -> list[MultipleChoice]:
    """WinoGrande items."""
    return [parse_winogrande(row.fields, row.where) for row in benchmark_rows(path, "WinoGrande")]


def parse_winogrande(fields: dict, where: str) -> MultipleChoice:
    """One row; the sentence must contain exactly one ``_`` blank."""
    sentence = require_text(fields, "sentence", where)
    if sentence.count("_") != 1:
        raise fail(where, f"the sentence must contain exactly one '_' blank, found {sentence.count('_')}")
    before, after = sentence.split("_")
    options = (require_text(fields, "option1", where), require_text(fields, "option2", where))
    return MultipleChoice(before, options, label_index(fields, "answer", where, 2, first=1), suffix=after)
