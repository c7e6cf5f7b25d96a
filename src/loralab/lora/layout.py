"""Where an adapter's tensors live: the one place that knows the file keys and which factor is transposed.

A PEFT adapter file names a module's tensors ``<path>.<key>``. Linear and GPT-2 Conv1D layers use
``lora_A.weight`` / ``lora_B.weight``; embeddings use ``lora_embedding_A`` / ``lora_embedding_B``;
a variant may add its own keys (DoRA: ``lora_magnitude_vector``). A: (r, d_in) and B: (d_out, r)
always; ΔW = scale·B·A is (d_out, d_in), stored transposed in the base weight when the base keeps
its weight input-major (Conv1D: (d_in, d_out); Embedding: (num_embeddings, dim), d_in = num_embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FactorLayout:
    """The file keys of A and B for one kind of base layer, and whether ΔW is stored transposed."""

    kind: str
    key_A: str
    key_B: str
    transposed: bool

    @property
    def keys(self) -> tuple[str, str]:
        return (self.key_A, self.key_B)


LINEAR = FactorLayout("linear", "lora_A.weight", "lora_B.weight", transposed=False)
CONV1D = FactorLayout("conv1d", "lora_A.weight", "lora_B.weight", transposed=True)
EMBEDDING = FactorLayout("embedding", "lora_embedding_A", "lora_embedding_B", transposed=True)

#: kind → layout
LAYOUTS = {layout.kind: layout for layout in (LINEAR, CONV1D, EMBEDDING)}

#: layouts that a file's keys can tell apart (Conv1D shares Linear's keys; the file's fan_in_fan_out tells)
_BY_KEYS = {LINEAR.keys: LINEAR, EMBEDDING.keys: EMBEDDING}


def file_layout(keys: set[str], fan_in_fan_out: bool) -> FactorLayout | None:
    """The layout of one module's tensors in a file, from their keys (None: neither pair present)."""
    for pair, layout in _BY_KEYS.items():
        if set(pair) & keys:
            return CONV1D if layout is LINEAR and fan_in_fan_out else layout
    return None


def factor_keys() -> tuple[str, ...]:
    """Every key of an A or B factor, in any layout."""
    return tuple(key for pair in _BY_KEYS for key in pair)


def split_key(key: str, extra_keys: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """``<path>.lora_A.weight`` → (path, "lora_A.weight"); also for ``extra_keys`` (a variant's tensors);
    None for a key that is neither."""
    for suffix in factor_keys() + extra_keys:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], suffix
    return None
