"""Built-in tasks: ``arith`` (word problems), ``arith-preference`` (the same as DPO pairs),
``pycode`` (Python functions), ``source-text`` (prose).

``get_task(name, **options)`` returns a :class:`Task` whose ``train(n, seed)``
and ``test(n, seed)`` give reproducible, disjoint item lists and whose
``to_record(item)`` gives a training record.
"""

from loralab.data.tasks.arith import ArithTask, extract_answer, is_correct
from loralab.data.tasks.arith_preference import ArithPreferenceTask
from loralab.data.tasks.base import Task
from loralab.data.tasks.pycode import PyCodeTask, assemble_program
from loralab.data.tasks.registry import TASKS, get_task
from loralab.data.tasks.source_text import SourceTextTask

__all__ = [
    "TASKS",
    "ArithPreferenceTask",
    "ArithTask",
    "PyCodeTask",
    "SourceTextTask",
    "Task",
    "assemble_program",
    "extract_answer",
    "get_task",
    "is_correct",
]
