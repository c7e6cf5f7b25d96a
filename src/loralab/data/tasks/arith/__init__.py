"""Arithmetic word problems: generator (:class:`ArithTask`) and answer checking."""

from loralab.data.tasks.arith.answers import extract_answer, extract_strict_answer, is_correct
from loralab.data.tasks.arith.task import LEVELS, ArithTask

__all__ = ["LEVELS", "ArithTask", "extract_answer", "extract_strict_answer", "is_correct"]
