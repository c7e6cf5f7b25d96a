"""Readers for benchmark files that users bring (JSONL; other formats by extension as for training data).

Math: :func:`read_gsm8k` -> MathProblem. Code: :func:`read_humaneval` ->
CodeProblem. Instruction sets: :func:`read_metamathqa`, :func:`read_magicoder`
-> InstructionRecord. Multiple choice: :func:`read_hellaswag`,
:func:`read_arc`, :func:`read_winogrande` -> MultipleChoice.
"""

from loralab.data.benchmarks.arc import read_arc
from loralab.data.benchmarks.gsm8k import read_gsm8k
from loralab.data.benchmarks.hellaswag import read_hellaswag
from loralab.data.benchmarks.humaneval import read_humaneval
from loralab.data.benchmarks.instructions import read_magicoder, read_metamathqa
from loralab.data.benchmarks.winogrande import read_winogrande

__all__ = [
    "read_arc",
    "read_gsm8k",
    "read_hellaswag",
    "read_humaneval",
    "read_magicoder",
    "read_metamathqa",
    "read_winogrande",
]
