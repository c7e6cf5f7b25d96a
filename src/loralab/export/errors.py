"""The one error of GGUF export: what was asked cannot be written as llama.cpp reads it."""

from loralab.errors import LoraLabError


class ExportError(LoraLabError):
    """A model, tokenizer, adapter or tensor type that loralab cannot write as GGUF (one line: what, and what to do)."""
