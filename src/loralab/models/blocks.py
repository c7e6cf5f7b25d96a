"""A model's repeated blocks (decoder layers): the unit that FSDP shards and ``train.compile`` compiles."""

from __future__ import annotations

from torch import nn


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of the classes transformers names in ``_no_split_modules`` (e.g. ``LlamaDecoderLayer``);
    [] when the model names none."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    return [m for m in model.modules() if type(m).__name__ in names]
