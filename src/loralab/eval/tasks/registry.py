"""For each task kind: how its items are loaded and how a model is scored on them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import DataError
from loralab.eval.options import EvalOptions
from loralab.eval.tasks.choice_task import run_choice
from loralab.eval.tasks.code_task import run_code
from loralab.eval.tasks.math_task import run_math
from loralab.eval.tasks.preference_task import run_preference
from loralab.eval.tasks.spec import TaskSpec
from loralab.eval.tasks.text_tasks import run_kl, run_perplexity

DEFAULT_COUNTS = {"arith": 200, "pycode": 50, "arith-preference": 200}


@dataclass(frozen=True)
class TaskKind:
    """``load(spec, options)`` -> items (already limited); ``run(model, tokenizer, spec, items, options)`` -> results."""

    load: Callable[[TaskSpec, EvalOptions], list]
    run: Callable[..., list]
    #: ``run`` also takes ``reference=``: the base model to compare with (None: adapters disabled)
    compares_to_base: bool = False
    #: the perplexity kind that ``run`` can score from its own forward passes (``perplexity_task=``)
    perplexity_twin: str | None = None
    #: task name → its results when the model is exactly its base (an adapter at B·A = 0), known without
    #: running it; None: run it
    exact_at_base: Callable[[str], list] | None = None


def _no_divergence(name: str) -> list:
    from loralab.eval.result import TaskResult

    return [TaskResult(name, "kl_to_base", 0.0, 0.0, 0, 0.0, "source", False, {"exact": "the adapter starts at B·A = 0"})]


def _builtin_problems(spec: TaskSpec, options: EvalOptions) -> list:
    from loralab.data.tasks import get_task

    return get_task(spec.kind, **options.options_of(spec.kind)).test(options.limit or DEFAULT_COUNTS[spec.kind], options.seed)


def _builtin_pairs(spec: TaskSpec, options: EvalOptions) -> list:
    from loralab.data.tasks import get_task

    task = get_task(spec.kind, **options.options_of(spec.kind))
    return [task.to_record(problem) for problem in _builtin_problems(spec, options)]


def _pair_file(spec: TaskSpec, options: EvalOptions) -> list:
    from loralab.data import load_preference_records

    return options.take(load_preference_records(_existing(spec.path)))


def _source_passages(spec: TaskSpec, options: EvalOptions) -> list[str]:
    from loralab.data.tasks import get_task

    task = get_task("source-text", **options.options_of("source-text"))
    return options.take_documents([record.text for record in task.test(None, options.seed)])


def _reader(name: str) -> Callable[[TaskSpec, EvalOptions], list]:
    def load(spec: TaskSpec, options: EvalOptions) -> list:
        from loralab.data import benchmarks

        return options.take(getattr(benchmarks, name)(_existing(spec.path)))

    return load


def _paragraphs(spec: TaskSpec, options: EvalOptions) -> list[str]:
    from loralab.data.readers.text_file import read_utf8

    text = read_utf8(_existing(spec.path))
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
    if not paragraphs:
        raise DataError(f"{spec.path}: the file holds no text to score.")
    return options.take_documents(paragraphs)


def _existing(path: Any) -> Path:
    found = Path(path)
    if not found.is_file():
        raise DataError(f"{found}: no such file.")
    return found


KINDS: dict[str, TaskKind] = {
    "arith": TaskKind(_builtin_problems, run_math),
    "pycode": TaskKind(_builtin_problems, run_code),
    "arith-preference": TaskKind(_builtin_pairs, run_preference, compares_to_base=True),
    "source-ppl": TaskKind(_source_passages, run_perplexity),
    "source-kl": TaskKind(_source_passages, run_kl, compares_to_base=True, perplexity_twin="source-ppl",
                          exact_at_base=_no_divergence),
    "gsm8k": TaskKind(_reader("read_gsm8k"), run_math),
    "humaneval": TaskKind(_reader("read_humaneval"), run_code),
    "pref": TaskKind(_pair_file, run_preference, compares_to_base=True),
    "hellaswag": TaskKind(_reader("read_hellaswag"), run_choice),
    "arc": TaskKind(_reader("read_arc"), run_choice),
    "winogrande": TaskKind(_reader("read_winogrande"), run_choice),
    "ppl": TaskKind(_paragraphs, run_perplexity),
    "kl": TaskKind(_paragraphs, run_kl, compares_to_base=True, perplexity_twin="ppl", exact_at_base=_no_divergence),
}
