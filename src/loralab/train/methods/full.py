"""``method: full``: every weight trains (the baseline of Biderman et al. 2024)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from loralab.models.cache import atomic_save
from loralab.models.load import load_model
from loralab.models.portable_files import make_portable
from loralab.train.methods.base import Method


class FullMethod(Method):
    name = "full"
    output_kind = "Hugging Face format"
    strategies = ("ddp", "fsdp")

    def make_trainable(self, model: nn.Module, recipe) -> None:
        for param in model.parameters():
            param.requires_grad_(True)

    def output_folder(self, run) -> Path:
        return run.model

    def finished(self, run) -> bool:
        return (run.model / "config.json").is_file()

    def save_final(self, model: nn.Module, tokenizer: Any, run) -> Path:
        def save(folder: Path) -> None:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            make_portable(folder)  # transformers 4.x reads it as 5.x does

        atomic_save(save, run.model)
        return run.model

    def merged_model(self, recipe, run) -> tuple[nn.Module, Any]:
        return load_model(str(run.model))
