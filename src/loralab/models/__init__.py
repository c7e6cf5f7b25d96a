"""Model loading: the bundled SmolLM2, local folders, GGUF files, hub ids and tiny test models."""

from loralab.models.load import load_model
from loralab.models.tiny import TINY_KINDS, tiny_model
from loralab.models.tokenizer import load_tokenizer

__all__ = ["TINY_KINDS", "load_model", "load_tokenizer", "tiny_model"]
