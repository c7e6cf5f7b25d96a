"""``loralab eval MODEL [--adapter DIR] --tasks T1,T2,... [--limit N] [--out FILE] [--baseline]``.

Prints a results table; with ``--baseline`` the same tasks are also run with the
adapter disabled (same weights in memory) and a base vs fine-tuned comparison is
printed. ``--out`` writes the JSON records (``variant``: "adapter" or "base"); it is checked
for writability before the model loads and rewritten (atomically) as each task finishes, so an
interrupted evaluation keeps the tasks it completed.
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
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str]) -> None:
    """Run ``loralab eval``; user mistakes raise LoraLabError (the top-level CLI prints them)."""
    import loralab
    from loralab.eval.evaluate import evaluate
    from loralab.eval.report import compare_table, results_table, to_json
    from loralab.models import load_model

    args = build_parser().parse_args(argv)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    for name in tasks:  # fail on a bad task name before loading the model
        parse_task(name)
    if args.baseline and not args.adapter:
        raise ConfigError("--baseline compares against the model without its adapter: give one with --adapter DIR.")
    if args.out:
        writable_file(args.out, "--out")
    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    if args.adapter:
        loralab.load_adapter(model, args.adapter)
    settings = dict(
        limit=args.limit, seed=args.seed, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        samples=args.samples, k=args.k or min(5, args.samples), temperature=args.temperature,
        progress=not args.no_progress,
    )
    variant = "adapter" if args.adapter else "model"
    save = _saver(args.out)
    tuned = evaluate(model, tokenizer, tasks, on_task=lambda done: save(json.loads(to_json(done, variant=variant))), **settings)
    print(results_table(tuned))
    records = json.loads(to_json(tuned, variant=variant))
    if args.baseline:
        with loralab.disabled(model):
            base = evaluate(model, tokenizer, tasks, **settings,
                            on_task=lambda done: save(records + json.loads(to_json(done, variant="base"))))  # fmt: skip
        print("\nbase model (adapter disabled)\n" + results_table(base))
        print("\n" + compare_table(base, tuned))
        records += json.loads(to_json(base, variant="base"))
    save(records)


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
