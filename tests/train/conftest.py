"""Tiny recipes for trainer tests: a random tiny Llama and a handful of instruction records."""

import json

import pytest

from loralab.train.overrides import apply_overrides
from loralab.train.recipe import recipe_from_dict



@pytest.fixture
def make_recipe(tmp_path, data_file):
    """``make_recipe("train.max_steps=5", ...)``: a tiny LoRA recipe with overrides, validated."""

    def make(*overrides: str, **sections):
        raw = {
            "name": "tiny",
            "output_dir": str(tmp_path / "runs"),
            "method": "lora",
            "model": {"name": "tiny-llama"},
            # the head too: a tiny random model's frozen head keeps logits near uniform
            "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"]},
            "data": {"path": str(data_file), "max_length": 64},
            "optimizer": {"lr": 3e-2},
            # fp32 whatever the CPU: the exactness tests (resume, accumulation) compare float32 runs
            "train": {"max_steps": 4, "micro_batch_size": 4, "schedule": "constant", "precision": "fp32"},
        }
        raw.update(sections)
        return recipe_from_dict(apply_overrides(raw, list(overrides)))

    return make
