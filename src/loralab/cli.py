"""The ``loralab`` command. Each subcommand is one entry of ``COMMANDS``.

User mistakes (``LoraLabError``) print one clear line and exit with status 2; a stop signal
exits with 128 + its number (130 for Ctrl-C, 143 for SIGTERM); anything else is a bug and
keeps its stack trace. In a distributed run (``torchrun``) a mistake every process meets alike is said
once per machine (local rank 0), one of a rank's own by that rank.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Callable, NoReturn


def _entry(target: str) -> Callable[[list[str]], None]:
    """``"package.module:function"`` → a command that imports the module only when it runs (a fast --help)."""
    module, function = target.split(":")

    def run(argv: list[str]) -> None:
        getattr(importlib.import_module(module), function)(argv)

    return run


def _adapter_info(argv: list[str]) -> None:
    import argparse

    from loralab.lora.io import read_adapter

    parser = argparse.ArgumentParser(prog="loralab adapter-info", description="Describe an adapter folder.")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    config, modules, extra = read_adapter(args.folder)
    lora = config.lora
    print(f"LoRA r={lora.r} alpha={lora.alpha} rslora={lora.rslora} dropout={lora.dropout} bias={lora.bias}")
    print(f"base model: {config.base_model_name_or_path or 'unknown'}")
    n = sum(f.A.numel() + f.B.numel() for f in modules.values()) + sum(t.numel() for t in extra.values())
    print(f"{len(modules)} adapted modules, {n:,} parameters; other saved tensors: {len(extra)}")
    for path, factors in modules.items():
        print(f"  {path}: A {tuple(factors.A.shape)}, B {tuple(factors.B.shape)}")


COMMANDS: dict[str, tuple[Callable[[list[str]], None], str]] = {
    "demo": (_entry("loralab.demo:main"), "LoRA on the bundled SmolLM2: parameters, merge = unmerge, PEFT-format round trip"),
    "train": (_entry("loralab.train.cli:train_main"), "fine-tune from a YAML recipe (LoRA, rsLoRA, QLoRA or full) into runs/<name>/"),
    "merge": (_entry("loralab.train.cli:merge_main"), "write a run's model with its adapter merged, in Hugging Face format"),
    "export": (_entry("loralab.export.cli:export_main"), "write a run's merged model (or any model) or its adapter as llama.cpp GGUF"),
    "eval": (_entry("loralab.eval.cli:main"), "measure what a model learned (target tasks) and what it forgot (source text)"),
    "analyze": (_entry("loralab.analysis.cli:main"), "analyse weight updates of runs: spectrum / rank of ΔW, subspace similarity, amplification"),
    "adapter-info": (_adapter_info, "describe an adapter folder (PEFT format)"),
    "study": (_entry("loralab.studies.cli:study_main"), "run a study: many trials of one recipe into one folder, with results.csv"),
    "compare": (_entry("loralab.studies.compare:compare_main"), "the tables and plots of a study (learning vs forgetting, curves) for runs made separately"),
    "chat": (_entry("loralab.chat.cli:chat_main"), "chat with a model (streamed; /reset, /system, /adapter off|on to compare with the base)"),
    "generate": (_entry("loralab.chat.cli:generate_main"), "complete a prompt or a JSONL file of prompts, writing JSONL"),
}


def main(argv: list[str] | None = None) -> int:
    from loralab import __version__
    from loralab.errors import LoraLabError

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: loralab COMMAND [options]\n\ncommands:")
        for name, (_, help_text) in COMMANDS.items():
            print(f"  {name:<14} {help_text}")
        return 0
    if argv[0] == "--version":
        print(f"loralab {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"loralab: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from loralab.log import show_progress_messages

    show_progress_messages()
    from loralab.stops import stop_on_signals

    try:
        stop_on_signals()  # SIGTERM / SIGHUP end any command like Ctrl-C: cleanly, with a message
        COMMANDS[argv[0]][0](argv[1:])
    except LoraLabError as err:
        if not err.same_on_every_rank:
            rank = int(os.environ.get("RANK", "0"))
            said_by = f"rank {rank}: " if rank and not str(err).startswith("rank ") else ""
            print(f"loralab: error: {said_by}{err}", file=sys.stderr)
        elif _local_rank() == 0 or not _local_rank_0_says_it():
            print(f"loralab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM / SIGHUP turned into Stopped by loralab.stops
        signum = getattr(stop, "signum", 2)
        if _local_rank() == 0:  # torchrun stops every rank: rank 0 says it
            print(f"loralab: stopped by {getattr(stop, 'signame', 'SIGINT')}", file=sys.stderr)
        return 128 + signum
    return 0


#: how long a rank > 0 waits for torchrun to end it after local rank 0 met the same mistake
SAME_MISTAKE_SECONDS = 10.0


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _local_rank_0_says_it() -> bool:
    """A rank > 0 meeting a mistake that every rank meets alike: local rank 0 says it, and torchrun then stops
    this rank (SIGTERM, within SAME_MISTAKE_SECONDS). Exiting at once instead would make torchrun stop rank 0
    before it has said it. True if this rank was stopped so; False after the wait (rank 0 did not fail: say it)."""
    import time

    from loralab.stops import received

    try:
        if not received:  # else torchrun's SIGTERM came already (and was lost where Python could not raise it)
            time.sleep(SAME_MISTAKE_SECONDS)
    except KeyboardInterrupt:
        return True
    return bool(received)


def run() -> NoReturn:
    """The ``loralab`` command and ``python -m loralab``: :func:`main`, then exit with its status.

    A process that ``torchrun`` started leaves without the interpreter's teardown (``os._exit``, after
    flushing): its process group's C++ threads (Gloo) may otherwise be destroyed during finalisation and
    abort the process ("terminate called without an active exception") after a clean stop, turning
    status 143 into a crash. Everything the run writes is closed by then.
    """
    code = main()
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
