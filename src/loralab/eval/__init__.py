"""Evaluation: what a fine-tuned model learned (target domain) and what it forgot (source domain).

Entry point :func:`evaluate` (task names: :mod:`loralab.eval.tasks.spec`), reports in
:mod:`loralab.eval.report`, the ``loralab eval`` command in :mod:`loralab.eval.cli`.
Building blocks: :func:`generate`, :func:`pass_at_k`, :func:`run_program` (sandbox),
:func:`perplexity`, :func:`kl_to_base`, :func:`score_choices`.
"""

from loralab.eval.evaluate import evaluate
from loralab.eval.generate import GenerationSettings, generate
from loralab.eval.kl import kl_to_base
from loralab.eval.multiple_choice import score_choices
from loralab.eval.options import EvalOptions
from loralab.eval.passk import mean_pass_at_k, pass_at_k
from loralab.eval.perplexity import perplexity
from loralab.eval.report import compare_table, results_table, to_json
from loralab.eval.result import TaskResult
from loralab.eval.sandbox import SandboxLimits, SandboxResult, run_program, run_programs

__all__ = [
    "EvalOptions", "GenerationSettings", "SandboxLimits", "SandboxResult", "TaskResult", "compare_table", "evaluate",
    "generate", "kl_to_base", "mean_pass_at_k", "pass_at_k", "perplexity", "results_table", "run_program",
    "run_programs", "score_choices", "to_json",
]  # fmt: skip
