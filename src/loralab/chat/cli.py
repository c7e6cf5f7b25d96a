"""``loralab chat`` and ``loralab generate``: argument parsing, checks, then the model.

    loralab chat MODEL [--adapter DIR | RUN] [--system TEXT] [--max-new-tokens N] [--temperature T] [--seed S]
    loralab generate MODEL [--adapter DIR | RUN] (--prompt TEXT | --prompts FILE.jsonl) [--out OUT.jsonl] [--raw]

MODEL is a model name, folder, .gguf file or hub id, or a run folder (:mod:`loralab.chat.source`).
Every input (model name, adapter folder, prompts file, ``--out``) is checked before the model loads.
"""

from __future__ import annotations

import argparse
import sys

from loralab.eval.generate import GenerationSettings

MODEL_HELP = ("smollm2-135m-instruct, tiny-llama, a model folder, a .gguf file, a hub id, or a run folder "
              "(its adapter on its base, or a full fine-tuning run's model)")  # fmt: skip


def _common(parser: argparse.ArgumentParser, max_new_tokens: int) -> None:
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--adapter", metavar="DIR|RUN", help="a LoRA adapter folder (PEFT format) or an adapter run's folder")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (the default) decodes greedily")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (with --temperature > 0)")
    parser.add_argument("--seed", type=int, default=0, help="seeds sampling")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                        help="weights in memory (default float32; a run's own dtype for a run)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def _settings(args: argparse.Namespace, batch_size: int = 1) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                              seed=args.seed, batch_size=batch_size)  # fmt: skip


def chat_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loralab chat", description="Chat with a model (its chat template), replies streamed. "
                                     "Commands: /reset, /system TEXT, /adapter off|on, /help, /quit.")  # fmt: skip
    _common(parser, max_new_tokens=256)
    parser.add_argument("--system", metavar="TEXT", help="the system prompt to start with (/system changes it)")
    return parser


def chat_main(argv: list[str]) -> None:
    """Run ``loralab chat``; user mistakes raise LoraLabError (the top-level CLI prints them)."""
    from loralab.chat.session import ChatSession, run_chat, use_line_editing
    from loralab.chat.source import choose, load_choice

    args = chat_parser().parse_args(argv)
    settings = _settings(args)
    choice = choose(args.model, args.adapter)
    model, tokenizer = load_choice(choice, args.dtype, args.device)
    session = ChatSession(model, tokenizer, settings, system=args.system)
    template = "" if getattr(tokenizer, "chat_template", None) else " (no chat template: plain text turns)"
    use_line_editing()
    run_chat(session, banner=f"loralab chat: {choice.describe()}{template}")


def generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loralab generate",
                                     description="Complete one prompt or a JSONL file of prompts; write JSONL.")  # fmt: skip
    _common(parser, max_new_tokens=256)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="TEXT", help="one prompt")
    source.add_argument("--prompts", metavar="FILE.jsonl",
                        help='one JSON object per line: {"prompt": "..."} or {"messages": [{"role": ..., "content": ...}, ...]}')
    parser.add_argument("--out", metavar="OUT.jsonl", help="write the JSONL here (default: standard output)")
    parser.add_argument("--raw", action="store_true", help="give the prompt text to the model as it is (no chat template)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for a prompts file")
    return parser


def generate_main(argv: list[str]) -> None:
    """Run ``loralab generate``; every input is checked before the model loads."""
    from pathlib import Path

    from loralab.chat.prompts import completion_lines, generate_completions, prompt_record, read_prompts
    from loralab.chat.source import choose, load_choice
    from loralab.outputs import atomic_write, writable_file, writing
    from loralab.process import show_progress

    args = generate_parser().parse_args(argv)
    settings = _settings(args, args.batch_size)
    if args.prompt is not None:
        records = [prompt_record({"prompt": args.prompt}, "--prompt", args.raw)]
    else:
        records = read_prompts(args.prompts, args.raw)
    if args.out:
        writable_file(args.out, "--out")
    choice = choose(args.model, args.adapter)
    model, tokenizer = load_choice(choice, args.dtype, args.device)
    from tqdm.auto import tqdm

    shown = show_progress(args.prompts is not None and not args.no_progress)
    with tqdm(total=len(records), desc="generate", unit="prompt", disable=not shown, file=sys.stderr) as progress:
        completions = generate_completions(model, tokenizer, records, settings, args.raw, on_batch=progress.update)
    text = completion_lines(records, completions)
    if not args.out:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with writing(args.out, f"cannot write --out {args.out}"):
        atomic_write(args.out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(f"loralab: wrote {len(records)} completion(s) to {args.out}", file=sys.stderr)
