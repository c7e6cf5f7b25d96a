"""``loralab merge``: a run's final model as one plain Hugging Face folder.

LoRA: the base + scale·B·A merged into each adapted weight (in float32, then cast to
``dtype``). QLoRA: the NF4 base is dequantized first (the very weights the adapter was trained
on), then merged and written in 16 bits. Full fine-tuning: the saved model is copied.
The folder needs only transformers to load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from loralab.errors import ConfigError
from loralab.models.dtype import resolve_dtype
from loralab.train.recipe import load_recipe
from loralab.train.run_folder import RunFolder


def merge_run(run_dir: str | Path, out: str | Path, dtype: str | None = None) -> Path:
    """Write the merged model of ``run_dir`` to ``out``; ``dtype`` defaults to float32 (bfloat16 after QLoRA)."""
    run = RunFolder.existing(run_dir)
    recipe = load_recipe(run.recipe_file)
    out = Path(out)
    target = resolve_dtype(dtype or ("bfloat16" if recipe.method == "qlora" else "float32"))  # checked before any work
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new folder for the merged model")
    if recipe.method == "full":
        if not (run.model / "config.json").is_file():
            raise ConfigError(f"{run.path} has no final model yet (the run did not finish)")
        if dtype is None:
            shutil.copytree(run.model, out, dirs_exist_ok=True)
            return out
    elif not (run.adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{run.path} has no final adapter yet (the run did not finish; resume it first)")
    model, tokenizer = _merged(recipe, run)
    model = model.to(target)
    model.config.dtype = target
    from loralab.models.cache import atomic_save

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    atomic_save(save, out)
    return out


def _merged(recipe, run: RunFolder):
    from loralab.train.model_setup import ADAPTER, base_model

    if recipe.method == "full":
        from loralab.models import load_model

        return load_model(str(run.model))
    model, tokenizer = base_model(recipe)
    if recipe.method == "qlora":
        from loralab.quant import dequantize_base

        dequantize_base(model, dtype=torch.float32)
    from loralab.lora import load_adapter, unload

    load_adapter(model, run.adapter, ADAPTER)
    return unload(model, merge=True), tokenizer
