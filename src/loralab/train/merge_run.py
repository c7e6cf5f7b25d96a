"""``loralab merge``: a run's final model as one plain Hugging Face folder.

The run's method builds the plain model (:meth:`Method.merged_model`): LoRA merges
base + ΔW into each adapted weight (in float32, then cast to ``dtype``); QLoRA dequantizes its
NF4 base first (the very weights the adapter was trained on) and writes 16 bits by default;
full fine-tuning copies the saved model. The folder needs only transformers to load, 4.4x–4.5x or 5.x
(:mod:`loralab.models.portable_files`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from loralab.errors import ConfigError
from loralab.models.cache import atomic_save
from loralab.models.dtype import resolve_dtype
from loralab.models.portable_files import make_portable
from loralab.outputs import write_failure, writable_folder
from loralab.train.runs import RunFolder


def merge_run(run_dir: str | Path, out: str | Path, dtype: str | None = None) -> Path:
    """Write the merged model of ``run_dir`` to ``out``; ``dtype`` defaults to the method's (float32; bfloat16 after QLoRA)."""
    run = RunFolder.existing(run_dir)
    recipe = run.recipe()
    method = recipe.training_method
    out = Path(out)
    target = resolve_dtype(dtype or method.merge_dtype)  # checked before any work
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not empty; choose a new folder for the merged model")
    run.require_finished()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; give a new folder for the merged model")
    writable_folder(out.parent, "the folder for the merged model,")  # before minutes of merging, not after
    if dtype is None and not method.uses_adapter:  # nothing to merge or convert: the saved model as it is
        shutil.copytree(method.output_folder(run), out, dirs_exist_ok=True)
        make_portable(out)  # runs saved before loralab wrote portable files
        return out
    model, tokenizer = method.merged_model(recipe, run)
    model = model.to(target)
    model.config.dtype = target

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        make_portable(folder)

    try:
        atomic_save(save, out)
    except (OSError, RuntimeError) as err:
        raise write_failure(err, out.parent, f"cannot write the merged model to {out}") from None
    return out
