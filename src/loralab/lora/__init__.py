"""LoRA: adapters on any PyTorch model (see the package README for the API)."""

from loralab.lora.combine import combine_adapters
from loralab.lora.config import LoraConfig
from loralab.lora.inject import add_adapter
from loralab.lora.io import load_adapter, read_adapter, save_adapter
from loralab.lora.merge import merge, unload, unmerge
from loralab.lora.merge_file import merge_state_dict
from loralab.lora.report import ParameterCount, trainable_parameters
from loralab.lora.switching import active_adapters, delete_adapter, disabled, set_adapter

__all__ = [
    "LoraConfig", "ParameterCount", "active_adapters", "add_adapter", "combine_adapters", "delete_adapter",
    "disabled", "load_adapter", "merge", "merge_state_dict", "read_adapter", "save_adapter", "set_adapter",
    "trainable_parameters", "unload", "unmerge",
]  # fmt: skip
