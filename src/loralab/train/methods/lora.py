"""``method: lora``: a LoRA adapter named ``default`` on a frozen base (Hu et al. 2021)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn

from loralab.lora import add_adapter, load_adapter, save_adapter, unload
from loralab.train.methods.base import ADAPTER, Method


class LoraMethod(Method):
    name = "lora"
    sections = ("lora",)
    uses_adapter = True
    output_kind = "adapter, PEFT format"
    strategies = ("ddp", "fsdp")

    def make_trainable(self, model: nn.Module, recipe) -> None:
        add_adapter(model, recipe.lora, ADAPTER)

    def output_folder(self, run) -> Path:
        return run.adapter

    def finished(self, run) -> bool:
        return (run.adapter / "adapter_config.json").is_file()

    def save_final(self, model: nn.Module, tokenizer: Any, run) -> Path:
        return save_adapter(model, run.adapter, ADAPTER)

    def checkpoint_writer(self, model: nn.Module) -> Callable[[Path], None]:
        return lambda folder: save_adapter(model, folder / "adapter", ADAPTER)

    def merged_model(self, recipe, run) -> tuple[nn.Module, Any]:
        model, tokenizer = self.load_base(recipe)
        model = self.mergeable_base(model)
        load_adapter(model, run.adapter, ADAPTER)
        return unload(model, merge=True), tokenizer

    def mergeable_base(self, model: nn.Module) -> nn.Module:
        """The base in a form an adapter can be merged into (LoRA: as loaded)."""
        return model
