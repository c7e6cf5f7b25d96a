"""``loralab export``: a run's merged model or adapter, or any model, as llama.cpp GGUF files."""

from __future__ import annotations

import argparse


def export_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="loralab export",
        description="Write a model as a llama.cpp GGUF file: a run's model with its adapter merged, or any model "
        "loralab loads; or a run's adapter alone as a llama.cpp LoRA adapter GGUF.",
        epilog="e.g. loralab export runs/quickstart --gguf model.gguf --gguf-adapter adapter.gguf",
    )
    parser.add_argument("source", metavar="RUN_OR_MODEL", help="run folder, or a model: name, folder, .gguf file, hub id")
    parser.add_argument("--gguf", metavar="OUT.gguf", help="write the (merged) model here")
    parser.add_argument("--gguf-adapter", metavar="OUT.gguf", help="write the run's adapter here (llama.cpp --lora)")
    parser.add_argument("--type", help="f16 (model default), f32 (adapter default) or q8_0 (model only)")
    args = parser.parse_args(argv)

    from pathlib import Path

    from loralab.errors import ConfigError
    from loralab.export.adapter_file import ADAPTER_TYPES, write_adapter_gguf
    from loralab.export.file import check_output
    from loralab.export.model_file import write_model_gguf
    from loralab.export.sources import finished_run, is_run, merged_model, run_adapter
    from loralab.export.tensor_types import TYPES, tensor_type

    if not args.gguf and not args.gguf_adapter:
        raise ConfigError("say what to write: --gguf OUT.gguf (the model) and/or --gguf-adapter OUT.gguf (the adapter)")
    if args.gguf and args.gguf_adapter and Path(args.gguf).resolve() == Path(args.gguf_adapter).resolve():
        raise ConfigError("--gguf and --gguf-adapter name the same file; give two")
    # every check that needs no model first: types, output files, the run
    if args.gguf:
        tensor_type(args.type or "f16", tuple(TYPES))
        check_output(args.gguf, "the GGUF file")
    if args.gguf_adapter:
        tensor_type(args.type or "f32", ADAPTER_TYPES, " for an adapter")
        check_output(args.gguf_adapter, "the adapter GGUF file")
        finished_run(args.source, adapter=True)
    elif is_run(args.source):
        finished_run(args.source, adapter=False)

    if args.gguf_adapter:
        file_config, modules, extra, base_config, name = run_adapter(args.source)
        out = write_adapter_gguf(file_config, modules, extra, base_config, args.gguf_adapter, args.type or "f32", name)
        print(f"loralab: adapter written to {out} (llama.cpp: llama-cli -m BASE.gguf --lora {out})")
    if args.gguf:
        model, tokenizer, name = merged_model(args.source)
        out = write_model_gguf(model, tokenizer, args.gguf, args.type or "f16", name)
        print(f"loralab: model written to {out} (llama.cpp: llama-cli -m {out})")
