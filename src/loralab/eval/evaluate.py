"""``evaluate``: score a model on a list of tasks and return one TaskResult per (task, metric)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from loralab.errors import ConfigError
from loralab.eval.options import EvalOptions
from loralab.eval.result import TaskResult
from loralab.eval.tasks.registry import KINDS
from loralab.eval.tasks.spec import known_tasks, parse_task


def evaluate(model: Any, tokenizer: Any, tasks: Sequence[str], *, limit: int | None = None, seed: int = 0,
             reference: Any = None, on_task: Callable[[list[TaskResult]], None] | None = None,
             **settings: Any) -> list[TaskResult]:  # fmt: skip
    """Evaluate ``model`` on ``tasks`` (names as in :mod:`loralab.eval.tasks.spec`, e.g. ``["arith", "source-ppl"]``).

    ``limit`` caps the items per task; ``seed`` picks built-in test items and seeds sampling;
    further ``settings`` are :class:`EvalOptions` fields (``batch_size``, ``samples``, ``progress``...).
    Every task name is parsed and every file read before the first model call, so mistakes fail fast.
    The model is put in eval mode and evaluated as it is (with its active adapters).
    ``reference``: the base model for KL tasks when ``model`` has no adapter to disable
    (full fine-tuning); by default KL compares with ``model`` under :func:`loralab.disabled`.
    ``on_task(results)`` is called as each task finishes, with every result so far (in task
    order), so a caller can save partial results before a long evaluation ends.
    """
    options, loaded = _load_tasks(tasks, limit, seed, settings)
    specs = [spec for spec, _ in loaded]
    from tqdm.auto import tqdm

    twins = _perplexity_twins(specs)
    model.eval()
    by_task: dict[str, list[TaskResult]] = {}
    with tqdm(total=len(loaded), desc="evaluate", disable=not options.progress) as progress:
        for spec, items in loaded:
            if spec.name in twins.values():  # scored by its KL task's forward passes
                continue
            progress.set_postfix_str(spec.name)
            start = time.perf_counter()
            kind = KINDS[spec.kind]
            extra = {"reference": reference} if kind.compares_to_base else {}
            if spec.name in twins:
                extra["perplexity_task"] = twins[spec.name]
            task_results = kind.run(model, tokenizer, spec, items, options, **extra)
            seconds = time.perf_counter() - start
            for result in task_results:
                result.seconds = seconds
                by_task.setdefault(result.task, []).append(result)
            progress.update(1 + (spec.name in twins))
            if on_task is not None:
                on_task([result for spec in specs for result in by_task.get(spec.name, [])])
    return [result for spec in specs for result in by_task.get(spec.name, [])]


def check_tasks(tasks: Sequence[str], *, limit: int | None = None, seed: int = 0, **settings: Any) -> None:
    """Parse every task name and read every task file as :func:`evaluate` would, without a model:
    a caller checks its tasks before it spends time loading one."""
    _load_tasks(tasks, limit, seed, settings)


def _load_tasks(tasks: Sequence[str], limit: int | None, seed: int, settings: dict) -> tuple[EvalOptions, list]:
    """(options, [(spec, items)]) for ``tasks``; ConfigError / DataError on the first mistake."""
    if isinstance(tasks, str) or not tasks:
        raise ConfigError(f"tasks must be a non-empty list of task names. Known tasks: {known_tasks()}.")
    unknown = sorted(set(settings) - set(EvalOptions.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"Unknown evaluation settings {unknown}; known: {', '.join(EvalOptions.__dataclass_fields__)}.")
    options = EvalOptions(limit=limit, seed=seed, **settings)
    specs = [parse_task(name) for name in tasks]
    return options, [(spec, KINDS[spec.kind].load(spec, options)) for spec in specs]


def twin_of(task: str) -> str | None:
    """The perplexity task on the same text as KL task ``task`` (``source-kl`` → ``source-ppl``, ``kl:F`` → ``ppl:F``)."""
    from loralab.eval.tasks.spec import TaskSpec

    spec = parse_task(task)
    twin_kind = KINDS[spec.kind].perplexity_twin
    return None if twin_kind is None else TaskSpec(twin_kind, spec.path).name


def _perplexity_twins(specs: list) -> dict[str, str]:
    """{KL task name: perplexity task name} for KL tasks whose perplexity twin (same text) is also asked for."""
    names = {spec.name for spec in specs}
    twins = {spec.name: twin_of(spec.name) for spec in specs}
    return {kl: twin for kl, twin in twins.items() if twin in names}
