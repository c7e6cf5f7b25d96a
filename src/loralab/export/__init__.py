"""GGUF export: models (adapters merged) and LoRA adapters as llama.cpp reads them (``loralab export``)."""

from loralab.export.adapter_file import write_adapter_gguf
from loralab.export.errors import ExportError
from loralab.export.model_file import write_model_gguf

__all__ = ["ExportError", "write_adapter_gguf", "write_model_gguf"]
