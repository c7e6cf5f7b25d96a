"""LoRA layers: small wrappers around a frozen base layer, one per supported base type.

Each wrapper keeps ``base_layer`` untouched and per-adapter factors A: (r, d_in) and
B: (d_out, r). The forward is  base(x) + Σ_active scale · B A dropout(x)  for adapters
not merged. ``merge`` adds ΔW = ``delta_weight(A, B, scale)`` to the base weight, after
which the layer costs exactly the base layer; ``unmerge`` subtracts it. Both are explicit
and idempotent, and have nothing to do with ``train()`` / ``eval()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from loralab.errors import LoraLabError
from loralab.lora.delta import adapter_output, delta_weight
from loralab.lora.interface import AdapterModule
from loralab.lora.variants import INIT_SCHEMES


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter on one layer: its rank, scale, dropout and init scheme."""

    r: int
    scale: float
    dropout: float = 0.0
    init: str = "kaiming"


class LoraLayer(nn.Module, AdapterModule):
    """Base of the LoRA wrappers. Subclasses say how the factors map to the base's layout."""

    #: ΔW is stored transposed in the base weight (input-major layouts).
    transposed: bool = False
    #: names of A and B in a PEFT adapter file, relative to the module path.
    file_keys: tuple[str, str] = ("lora_A.weight", "lora_B.weight")

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.specs: dict[str, AdapterSpec] = {}
        self.active: tuple[str, ...] = ()
        self.merged: list[str] = []

    # -- shapes ------------------------------------------------------------------------
    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        """(d_in, d_out) of the base layer."""
        raise NotImplementedError

    @classmethod
    def factor_shapes(cls, base_layer: nn.Module, r: int) -> dict[str, tuple[int, ...]]:
        """Shapes of A and B, by file key, for a base layer and a rank."""
        d_in, d_out = cls.io_features(base_layer)
        return {cls.file_keys[0]: (r, d_in), cls.file_keys[1]: (d_out, r)}

    # -- adapters ----------------------------------------------------------------------
    def add(self, name: str, spec: AdapterSpec) -> None:
        """Create adapter ``name`` with B·A = 0 (the layer's output is unchanged)."""
        d_in, d_out = self.io_features(self.base_layer)
        dtype, device = self.factor_dtype_device(self.base_layer)
        A = torch.empty(spec.r, d_in, dtype=dtype, device=device)
        B = torch.empty(d_out, spec.r, dtype=dtype, device=device)
        self.init_factors(spec.init, A, B)
        self.lora_A[name] = nn.Parameter(A)
        self.lora_B[name] = nn.Parameter(B)
        self.specs[name] = spec

    @staticmethod
    def factor_dtype_device(base_layer: nn.Module) -> tuple[torch.dtype, torch.device]:
        """The factors' dtype and device: the base weight's (float32 if it is not floating point);
        for a quantized base without ``weight`` (``NF4Linear``), float32 on its ``device``."""
        weight = getattr(base_layer, "weight", None)
        if isinstance(weight, torch.Tensor):
            return (weight.dtype if weight.dtype.is_floating_point else torch.float32), weight.device
        return torch.float32, base_layer.device

    def init_factors(self, scheme: str, A: torch.Tensor, B: torch.Tensor) -> None:
        INIT_SCHEMES[scheme](A, B)

    def adapter_names(self) -> list[str]:
        return list(self.specs)

    def set_active(self, names: Sequence[str]) -> None:
        self.active = tuple(n for n in names if n in self.specs)

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return [self.lora_A[name], self.lora_B[name]]

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        key_A, key_B = self.file_keys
        return {key_A: self.lora_A[name].detach(), key_B: self.lora_B[name].detach()}

    def expected_shapes(self, name: str) -> dict[str, tuple[int, ...]]:
        return self.factor_shapes(self.base_layer, self.specs[name].r)

    @torch.no_grad()
    def load_adapter_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        key_A, key_B = self.file_keys
        was_merged = name in self.merged
        if was_merged:
            self.unmerge()
        self.lora_A[name].copy_(tensors[key_A])
        self.lora_B[name].copy_(tensors[key_B])
        if was_merged:
            self.merge([name])

    def delete(self, name: str) -> None:
        remerge = [n for n in self.merged if n != name]
        self.unmerge()
        del self.lora_A[name], self.lora_B[name], self.specs[name]
        self.active = tuple(n for n in self.active if n != name)
        self.merge(remerge)

    # -- the update ----------------------------------------------------------------------
    def delta_weight(self, name: str) -> torch.Tensor:
        """ΔW of adapter ``name`` in the base weight's layout (float32 or better)."""
        return delta_weight(self.lora_A[name], self.lora_B[name], self.specs[name].scale, self.transposed)

    @torch.no_grad()
    def merge(self, names: Sequence[str]) -> None:
        """W ← W + ΔW for each named adapter not merged yet (idempotent)."""
        names = [n for n in dict.fromkeys(names) if n not in self.merged and n in self.specs]
        if not names:
            return
        weight = self.merged_weight()
        for name in names:
            weight.copy_((weight.to(torch.float32) + self.delta_weight(name)).to(weight.dtype))
            self.merged.append(name)

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← W − ΔW for every merged adapter, last merged first (idempotent)."""
        if not self.merged:
            return
        weight = self.merged_weight()
        while self.merged:
            name = self.merged.pop()
            weight.copy_((weight.to(torch.float32) - self.delta_weight(name)).to(weight.dtype))

    def merged_weight(self) -> torch.Tensor:
        """The base weight that merging changes. A quantized base (one with ``dequantize()``, e.g.
        ``NF4Linear``) has none: merging into it raises LoraLabError."""
        if hasattr(self.base_layer, "dequantize"):
            raise LoraLabError(
                f"cannot merge an adapter into a quantized {type(self.base_layer).__name__} base layer: "
                "call loralab.dequantize_base(model) first, then merge"
            )
        return self.base_layer.weight

    def unwrap(self) -> nn.Module:
        return self.base_layer

    # -- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.base_layer(x, *args, **kwargs)
        for name in self.active:
            if name not in self.merged:
                out = out + self.adapter_delta_output(name, x).to(out.dtype)
        return out

    def adapter_delta_output(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """scale · B A dropout(x), the adapter's contribution to the output."""
        spec = self.specs[name]
        dropout = spec.dropout if self.training else 0.0
        return adapter_output(x, self.lora_A[name], self.lora_B[name], spec.scale, dropout)

    def extra_repr(self) -> str:
        ranks = ", ".join(f"{n}: r={s.r}" for n, s in self.specs.items())
        return f"adapters=[{ranks}], active={list(self.active)}, merged={self.merged}"


class LoraLinear(LoraLayer):
    """LoRA on ``nn.Linear`` (weight: (d_out, d_in))."""

    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        return base_layer.in_features, base_layer.out_features


class LoraConv1D(LoraLayer):
    """LoRA on transformers' GPT-2 ``Conv1D``, whose weight is stored (d_in, d_out)."""

    transposed = True

    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        d_in, d_out = base_layer.weight.shape
        return d_in, d_out


class LoraEmbedding(LoraLayer):
    """LoRA on ``nn.Embedding`` (weight: (num_embeddings, dim)), as in the LoRA paper's library.

    Here d_in = num_embeddings (a token id is a one-hot input) and d_out = dim: the update
    of token t's vector is scale · B A[:, t]. Dropout does not apply (the input is an id).
    A starts at zero and B random, so that B·A = 0 while A, the factor indexed by tokens,
    receives gradient from the first step.
    """

    transposed = True
    file_keys = ("lora_embedding_A", "lora_embedding_B")

    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        return base_layer.num_embeddings, base_layer.embedding_dim

    @torch.no_grad()
    def init_factors(self, scheme: str, A: torch.Tensor, B: torch.Tensor) -> None:
        nn.init.zeros_(A)
        nn.init.normal_(B)

    def adapter_delta_output(self, name: str, x: torch.Tensor) -> torch.Tensor:
        base = self.base_layer
        rows = F.embedding(
            x, self.lora_A[name].T, base.padding_idx, base.max_norm, base.norm_type, base.scale_grad_by_freq, base.sparse
        )  # (..., r): A's columns for the tokens
        return F.linear(rows * self.specs[name].scale, self.lora_B[name])
