"""The ``loralab`` command. Each subcommand is one entry of ``COMMANDS``.

User mistakes (``LoraLabError``) print one clear line and exit with status 2; a stop signal
exits with 128 + its number (130 for Ctrl-C, 143 for SIGTERM); anything else is a bug and
keeps its stack trace.
"""

from __future__ import annotations

import sys
from typing import Callable


def _demo(argv: list[str]) -> None:
    from loralab.demo import main

    main(argv)


def _eval(argv: list[str]) -> None:
    from loralab.eval.cli import main

    main(argv)


def _analyze(argv: list[str]) -> None:
    from loralab.analysis.cli import main

    main(argv)


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


def _train(argv: list[str]) -> None:
    from loralab.train.cli import train_main

    train_main(argv)


def _merge(argv: list[str]) -> None:
    from loralab.train.cli import merge_main

    merge_main(argv)


def _chat(argv: list[str]) -> None:
    from loralab.chat.cli import chat_main

    chat_main(argv)


def _generate(argv: list[str]) -> None:
    from loralab.chat.cli import generate_main

    generate_main(argv)


def _export(argv: list[str]) -> None:
    from loralab.export.cli import export_main

    export_main(argv)


def _study(argv: list[str]) -> None:
    from loralab.studies.cli import study_main

    study_main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], None], str]] = {
    "demo": (_demo, "LoRA on the bundled SmolLM2: parameters, merge = unmerge, PEFT-format round trip"),
    "train": (_train, "fine-tune from a YAML recipe (LoRA, rsLoRA, QLoRA or full) into runs/<name>/"),
    "merge": (_merge, "write a run's model with its adapter merged, in Hugging Face format"),
    "export": (_export, "write a run's merged model (or any model) or its adapter as llama.cpp GGUF"),
    "eval": (_eval, "measure what a model learned (target tasks) and what it forgot (source text)"),
    "analyze": (_analyze, "analyse weight updates of runs: spectrum / rank of ΔW, subspace similarity, amplification"),
    "adapter-info": (_adapter_info, "describe an adapter folder (PEFT format)"),
    "study": (_study, "run a study: many trials of one recipe into one folder, with results.csv"),
    "chat": (_chat, "chat with a model (streamed; /reset, /system, /adapter off|on to compare with the base)"),
    "generate": (_generate, "complete a prompt or a JSONL file of prompts, writing JSONL"),
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
        print(f"loralab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM / SIGHUP turned into Stopped by loralab.stops
        signum = getattr(stop, "signum", 2)
        print(f"loralab: stopped by {getattr(stop, 'signame', 'SIGINT')}", file=sys.stderr)
        return 128 + signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
