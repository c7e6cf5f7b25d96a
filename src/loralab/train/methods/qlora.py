"""``method: qlora``: the base's linear layers in 4-bit NF4, a LoRA adapter on top (Dettmers et al. 2023)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from loralab.quant import dequantize_base, quantize_base, weight_memory
from loralab.train.methods.lora import LoraMethod


class QLoraMethod(LoraMethod):
    name = "qlora"
    sections = ("lora", "quant")
    #: the merged model is written in 16 bits: the dequantized NF4 weights hold no more than that
    merge_dtype = "bfloat16"
    #: FSDP cannot shard the NF4 base (its blocks are not plain tensors)
    strategies = ("ddp",)

    def load_base(self, recipe) -> tuple[nn.Module, Any]:
        model, tokenizer = super().load_base(recipe)
        quantize_base(model, recipe.quant)
        return model, tokenizer

    def identity(self, recipe) -> dict[str, Any]:
        return {**super().identity(recipe), "quant": repr(recipe.quant.to_dict())}

    def mergeable_base(self, model: nn.Module) -> nn.Module:
        """The NF4 base dequantized: the very weights the adapter was trained on, in float32."""
        return dequantize_base(model, dtype=torch.float32)

    def notes(self, model: nn.Module) -> list[str]:
        return [str(weight_memory(model))]
