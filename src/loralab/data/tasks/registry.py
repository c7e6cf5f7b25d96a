"""Built-in tasks by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loralab.data.tasks.arith import ArithTask
from loralab.data.tasks.arith_preference import ArithPreferenceTask
from loralab.data.tasks.base import Task
from loralab.data.tasks.pycode import PyCodeTask
from loralab.data.tasks.source_text import SourceTextTask
from loralab.errors import DataError

TASKS: dict[str, Callable[..., Task]] = {
    "arith": ArithTask,
    "arith-preference": ArithPreferenceTask,
    "pycode": PyCodeTask,
    "source-text": SourceTextTask,
}


def get_task(name: str, **options: Any) -> Task:
    """The task called ``name``, built with ``options`` (e.g. ``get_task("arith", level=2)``)."""
    factory = TASKS.get(name)
    if factory is None:
        raise DataError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))}.")
    try:
        return factory(**options)
    except TypeError as error:
        raise DataError(f"Task {name!r} does not accept these options {sorted(options)}: {error}.") from None
