"""``loralab train`` and ``loralab merge``."""

from __future__ import annotations

import argparse


def train_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="loralab train",
        description="Train from a YAML recipe into runs/<name>/ (see recipes/).",
        epilog="Overrides: dotted keys with YAML values, e.g. train.max_steps=20 lora.r=32 eval.tasks=[arith]",
    )
    parser.add_argument("recipe", nargs="?", help="recipe YAML file (not needed with --resume)")
    parser.add_argument("overrides", nargs="*", help="key=value settings that replace the recipe's")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its newest checkpoint")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder of the same name")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="train on N processes of this machine (N GPUs, or CPU processes): starts torchrun for you")  # fmt: skip
    args = parser.parse_intermixed_args(argv)
    from loralab.errors import ConfigError
    from loralab.train.recipe import load_recipe
    from loralab.train.trainer import resume, train

    if args.nproc is not None:
        _launch(args, argv)
    if args.resume:
        overrides = ([args.recipe] if args.recipe else []) + args.overrides
        if any("=" not in o and not o.startswith("~") for o in overrides):
            raise ConfigError("with --resume, give only key=value or ~key overrides (the recipe is the run's recipe.yaml)")
        resume(args.resume, overrides, progress=not args.no_progress)
        return
    if not args.recipe:
        raise ConfigError("give a recipe file, e.g. loralab train recipes/quickstart.yaml (or --resume runs/NAME)")
    recipe = load_recipe(args.recipe, args.overrides)
    train(recipe, force=args.force, progress=not args.no_progress)


def merge_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="loralab merge", description="Write a run's model, adapter merged, in Hugging Face format.")
    parser.add_argument("run", help="run folder, e.g. runs/quickstart")
    parser.add_argument("--out", required=True, help="new folder for the merged model")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: float32 (bfloat16 after QLoRA)")
    args = parser.parse_args(argv)
    from loralab.train.merge_run import merge_run

    out = merge_run(args.run, args.out, args.dtype)
    print(f"loralab: merged model written to {out} (load it with transformers.AutoModelForCausalLM.from_pretrained)")


def _launch(args: argparse.Namespace, argv: list[str]) -> None:
    """``--nproc N``: check what can be checked here (one error, not N), then run the same command under torchrun."""
    from loralab.errors import ConfigError
    from loralab.train.distributed.config import DistributedConfig
    from loralab.train.distributed.launch import launch
    from loralab.train.distributed.setup import resolve_backend
    from loralab.train.recipe import load_recipe
    from loralab.train.runs import RunFolder

    if args.nproc < 1:
        raise ConfigError(f"--nproc: give a number of processes ≥ 1, got {args.nproc}")
    if args.resume:
        recipe = RunFolder.existing(args.resume).recipe([o for o in [args.recipe, *args.overrides] if o])
    elif args.recipe:
        recipe = load_recipe(args.recipe, args.overrides)
    else:
        raise ConfigError("give a recipe file, e.g. loralab train recipes/quickstart.yaml --nproc 2 (or --resume runs/NAME)")
    resolve_backend(recipe.distributed or DistributedConfig(), recipe.train.device)
    rest = [a for i, a in enumerate(argv) if a != "--nproc" and not a.startswith("--nproc=") and (i == 0 or argv[i - 1] != "--nproc")]
    raise SystemExit(launch(args.nproc, rest))
