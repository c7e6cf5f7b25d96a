"""What ``loralab chat`` and ``loralab generate`` run: a model, an adapter, or a run folder.

``MODEL`` is anything :func:`loralab.models.load_model` loads, or a run folder (read with
:func:`loralab.train.runs.open_run`): an adapter run (``lora``, ``qlora``) means its base, built
as the run's method builds it (QLoRA: the NF4 base the adapter was trained on), with its final
adapter; a full fine-tuning run means its final model. ``--adapter`` is an adapter folder or an
adapter run's folder. Everything is checked before any model loads (:func:`choose`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import ConfigError
from loralab.train.runs import RunFolder, open_run


@dataclass(frozen=True)
class ModelChoice:
    """``model``: the name or path given to the loader; ``adapter``: the adapter folder, if any;
    ``run``: the adapter run whose method builds the base (None: :func:`load_model` loads ``model``)."""

    model: str
    adapter: Path | None = None
    run: RunFolder | None = None

    def describe(self) -> str:
        where = f"run {self.run.path}: " if self.run is not None else ""
        return f"{where}{self.model}" + (f" with adapter {self.adapter}" if self.adapter is not None else "")


def is_run_folder(path: str | Path) -> bool:
    return (Path(path) / "recipe.yaml").is_file()


def choose(model: str, adapter: str | None = None) -> ModelChoice:
    """The model and adapter that ``MODEL [--adapter DIR | RUN]`` names; errors before anything loads."""
    from loralab.lora.io import read_adapter
    from loralab.models.source import resolve_source

    run_model: RunFolder | None = None
    adapter_folder: Path | None = None
    if is_run_folder(model):
        run = _finished_run(model)
        method = run.method
        if method.uses_adapter:
            if adapter is not None:
                raise ConfigError(f"{model} is an adapter run, which brings its own adapter; give either the run "
                                  "or MODEL --adapter DIR, not both")  # fmt: skip
            run_model, adapter_folder = run, run.output()
            model = run.recipe().model.name
        else:  # full fine-tuning: its model, loaded like any model folder
            model = str(run.output())
    if adapter is not None:
        adapter_folder = Path(adapter)
        if is_run_folder(adapter):
            run = _finished_run(adapter)
            if not run.method.uses_adapter:
                raise ConfigError(f"--adapter {adapter} is a {run.method.name} fine-tuning run, which has no adapter; "
                                  f"give it as the model instead: {run.path}")  # fmt: skip
            adapter_folder = run.output()
    if run_model is None:
        resolve_source(model)  # a missing model folder or a bad name fails here, before minutes of loading
    if adapter_folder is not None:
        read_adapter(adapter_folder)  # missing, not an adapter, truncated: said now, not after the model loads
    return ModelChoice(model, adapter_folder, run_model)


def _finished_run(path: str | Path) -> RunFolder:
    return open_run(path).require_finished()


def load_choice(choice: ModelChoice, dtype: str | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, the adapter (named ``default``) loaded and active."""
    from loralab.lora import load_adapter
    from loralab.models import load_model

    if choice.run is not None:
        overrides = [f"train.device={device}"] + ([f"model.dtype={dtype}"] if dtype else [])
        recipe = choice.run.recipe(overrides)
        model, tokenizer = recipe.training_method.load_base(recipe)
    else:
        model, tokenizer = load_model(choice.model, dtype=dtype or "float32", device=device)
    if choice.adapter is not None:
        load_adapter(model, choice.adapter)
    return model.eval(), tokenizer
