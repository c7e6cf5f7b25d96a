"""loralab: LoRA fine-tuning that tells you what the model learned and what it forgot."""

from loralab.errors import LoraLabError
from loralab.lora import (
    LoraConfig,
    ParameterCount,
    active_adapters,
    add_adapter,
    combine_adapters,
    delete_adapter,
    disabled,
    load_adapter,
    merge,
    merge_state_dict,
    read_adapter,
    save_adapter,
    set_adapter,
    trainable_parameters,
    unload,
    unmerge,
)
from loralab.models import load_model, load_tokenizer
from loralab.quant import QuantConfig, dequantize_base, quantize_base

__version__ = "0.1.0"

__all__ = [
    "LoraConfig", "LoraLabError", "ParameterCount", "active_adapters", "add_adapter", "combine_adapters",
    "delete_adapter", "disabled", "load_adapter", "load_model", "load_tokenizer", "merge", "merge_state_dict", "read_adapter", "save_adapter",
    "set_adapter", "trainable_parameters", "unload", "unmerge", "QuantConfig", "dequantize_base", "quantize_base",
]  # fmt: skip
