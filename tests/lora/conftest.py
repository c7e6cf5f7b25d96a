"""Helpers shared by the LoRA layer tests."""

import pytest


@pytest.fixture
def saved_bytes():
    """``saved_bytes(layer, x)``: bytes of the distinct storages one forward saves for backward, leaving out x and
    the layer's parameters."""
    import torch

    def measure(layer, x):
        storages = {}

        def pack(t):
            storages.setdefault(t.untyped_storage().data_ptr(), t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x)
        kept = {x.untyped_storage().data_ptr()} | {p.untyped_storage().data_ptr() for p in layer.parameters()}
        return sum(t.untyped_storage().nbytes() for ptr, t in storages.items() if ptr not in kept)

    return measure
