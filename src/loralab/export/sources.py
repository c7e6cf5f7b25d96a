"""What ``loralab export`` exports: a run (its adapter merged, or alone) or any model loralab loads.

A run is read only through :class:`loralab.train.runs.RunFolder`, and merged by its method, as
``loralab merge`` does (:meth:`Method.merged_model`). Each check that needs no model runs before
any model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loralab.export.errors import ExportError
from loralab.lora.io import Factors, read_adapter
from loralab.lora.peft_format import AdapterFileConfig
from loralab.models.load import load_model
from loralab.train.runs import RunFolder


def is_run(source: str | Path) -> bool:
    """Whether ``source`` names a run folder (one holding recipe.yaml), rather than a model."""
    path = Path(source)
    return path.is_dir() and (path / "recipe.yaml").is_file()


def finished_run(source: str | Path, *, adapter: bool) -> RunFolder:
    """The run at ``source``, checked: it exists, has its final output, and (``adapter``) trained an adapter."""
    run = RunFolder.existing(source)
    method = run.method
    if adapter and not method.uses_adapter:
        raise ExportError(f"{run.path} is a {method.name} run: it has no adapter to export; use --gguf for its model")
    return run.require_finished()


def merged_model(source: str | Path) -> tuple[nn.Module, Any, str]:
    """(model, tokenizer, name): a run's model, adapter merged; else the model ``source`` names, as loaded."""
    if is_run(source):
        run = finished_run(source, adapter=False)
        model, tokenizer = run.method.merged_model(run.recipe(), run)
        return model.eval(), tokenizer, run.name
    model, tokenizer = load_model(str(source))
    return model, tokenizer, str(getattr(model.config, "name_or_path", "") or source)


def run_adapter(source: str | Path) -> tuple[AdapterFileConfig, dict[str, Factors], dict, Any, str]:
    """(file config, factors, other tensors, base model config, name) of a finished adapter run."""
    run = finished_run(source, adapter=True)
    file_config, modules, extra = read_adapter(run.method.output_folder(run))
    base, _ = load_model(run.recipe().model.name)  # only its config is used: names, head counts
    return file_config, modules, extra, base.config, f"{run.name}-lora"
