"""The tiny-model base recipe of the study tests (imported as ``study_recipes``)."""

from pathlib import Path

import yaml


def write_base_recipe(folder: Path, data_file: Path) -> Path:
    """``folder/base.yaml``: LoRA r=4 on a random tiny Llama, 2 steps on ``data_file``, its perplexity evaluated."""
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump({
        "name": "base", "method": "lora", "model": {"name": "tiny-llama"},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "lm_head"]},
        "data": {"path": str(data_file), "max_length": 64},
        "optimizer": {"lr": 3e-2},
        "train": {"max_steps": 2, "micro_batch_size": 4, "schedule": "constant", "precision": "fp32"},
        "eval": {"tasks": [f"ppl:{data_file}"], "limit": 4, "precision": "fp32"},
    }))  # fmt: skip
    return path
