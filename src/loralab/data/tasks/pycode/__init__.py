"""Python function-writing problems: generator (:class:`PyCodeTask`) and test-program assembly."""

from loralab.data.tasks.pycode.program import assemble_program, extract_code, scorer_completion, solution_source
from loralab.data.tasks.pycode.task import TEMPLATES, PyCodeTask

__all__ = ["TEMPLATES", "PyCodeTask", "assemble_program", "extract_code", "scorer_completion", "solution_source"]
