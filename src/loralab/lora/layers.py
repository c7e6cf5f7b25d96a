"""LoRA layers: small wrappers around a frozen base layer, one per supported base type.

Each wrapper keeps ``base_layer`` untouched and per-adapter factors A: (r, d_in) and
B: (d_out, r), plus the parameters of the adapter's variant (:mod:`loralab.lora.variants`).
The forward is  base(x) + Σ_active variant contribution  for adapters not merged (plain LoRA:
scale · B A dropout(x)). ``merge`` replaces the base weight by the variant's merged weight
(plain LoRA: W + ΔW, ΔW = ``delta_weight(A, B, scale)``), after which the layer costs exactly
the base layer; ``unmerge`` inverts it. Both are explicit and idempotent, and have nothing to do
with ``train()`` / ``eval()``. A merged adapter cannot train (its update is in the frozen W; A and B
get no gradient), so a backward through a layer with a merged adapter whose factors require grad
raises LoraLabError (unmerge before training); forward outputs are unaffected. Which file keys hold
A and B, and whether ΔW is stored transposed, is the layer's :class:`~loralab.lora.layout.FactorLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from loralab.errors import LoraLabError
from loralab.lora.delta import adapter_output, compute_dtype, delta_weight
from loralab.lora.fused_linear import fused_forward
from loralab.lora.interface import AdapterModule
from loralab.lora.layout import CONV1D, EMBEDDING, LINEAR, FactorLayout
from loralab.lora.variants import INIT_SCHEMES, VARIANTS, Variant


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter on one layer: its rank, scale, dropout, init scheme and variant (a key of ``VARIANTS``)."""

    r: int
    scale: float
    dropout: float = 0.0
    init: str = "kaiming"
    variant: str = "lora"


class LoraLayer(nn.Module, AdapterModule):
    """Base of the LoRA wrappers. Subclasses say how the factors map to the base's layout."""

    #: file keys of A and B, and whether ΔW is stored transposed in the base weight
    layout: FactorLayout = LINEAR

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.variant_params = nn.ModuleDict()  # adapter name → ParameterDict of its variant's own parameters
        self.specs: dict[str, AdapterSpec] = {}
        self.active: tuple[str, ...] = ()
        self.merged: list[str] = []
        self.merge_memos: dict[str, object] = {}  # what a variant needs to unmerge (DoRA: the norm at merge)
        self.variant_memos: dict[str, object] = {}  # what a variant keeps between forwards (DoRA: its norm in evaluation)

    # -- shapes ------------------------------------------------------------------------
    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        """(d_in, d_out) of the base layer."""
        raise NotImplementedError

    @classmethod
    def file_shapes(cls, base_layer: nn.Module, r: int, variant: str = "lora") -> dict[str, tuple[int, ...]]:
        """Shapes of an adapter's file tensors (A, B and the variant's), by file key, for a base layer and a rank."""
        d_in, d_out = cls.io_features(base_layer)
        var = VARIANTS[variant]
        shapes = {cls.layout.key_A: (r, d_in), cls.layout.key_B: (d_out, r)}
        shapes.update({var.file_keys[p]: shape for p, shape in var.parameter_shapes(d_in, d_out).items()})
        return shapes

    def variant(self, name: str) -> Variant:
        return VARIANTS[self.specs[name].variant]

    # -- adapters ----------------------------------------------------------------------
    def add(self, name: str, spec: AdapterSpec) -> None:
        """Create adapter ``name`` with B·A = 0 (the layer's output is unchanged)."""
        d_in, d_out = self.io_features(self.base_layer)
        dtype, device = self.factor_dtype_device(self.base_layer)
        A = torch.empty(spec.r, d_in, dtype=dtype, device=device)
        B = torch.empty(d_out, spec.r, dtype=dtype, device=device)
        variant = VARIANTS[spec.variant]
        self.init_factors(spec.init, A, B)
        start = {}
        if variant.parameter_shapes(d_in, d_out):
            with torch.no_grad():
                W = self.canonical_weight()
                start = variant.init_parameters(W.to(compute_dtype(W.dtype)), delta_weight(A, B, spec.scale))
        self.lora_A[name] = nn.Parameter(A)
        self.lora_B[name] = nn.Parameter(B)
        self.variant_params[name] = nn.ParameterDict({k: nn.Parameter(v.to(dtype)) for k, v in start.items()})
        self.specs[name] = spec
        self.variant_memos.pop(name, None)

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
        return [self.lora_A[name], self.lora_B[name], *self.variant_params[name].values()]

    def b_factors(self) -> list[nn.Parameter]:
        """Every adapter's B (LoRA+ gives them their own learning rate)."""
        return list(self.lora_B.values())

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        state = {self.layout.key_A: self.lora_A[name].detach(), self.layout.key_B: self.lora_B[name].detach()}
        keys = self.variant(name).file_keys
        state.update({keys[p]: value.detach() for p, value in self.variant_params[name].items()})
        return state

    def expected_shapes(self, name: str) -> dict[str, tuple[int, ...]]:
        return self.file_shapes(self.base_layer, self.specs[name].r, self.specs[name].variant)

    @torch.no_grad()
    def load_adapter_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        merged = list(self.merged)
        self.unmerge()
        self.lora_A[name].copy_(tensors[self.layout.key_A])
        self.lora_B[name].copy_(tensors[self.layout.key_B])
        for param, key in self.variant(name).file_keys.items():
            self.variant_params[name][param].copy_(tensors[key])
        self.remerge(merged)

    def delete(self, name: str) -> None:
        merged = [n for n in self.merged if n != name]
        self.unmerge()
        del self.lora_A[name], self.lora_B[name], self.variant_params[name], self.specs[name]
        self.variant_memos.pop(name, None)
        self.active = tuple(n for n in self.active if n != name)
        self.remerge(merged)

    # -- the update ----------------------------------------------------------------------
    def delta_weight(self, name: str) -> torch.Tensor:
        """ΔL = scale·B·A of adapter ``name`` in the base weight's layout (float32 or better)."""
        return delta_weight(self.lora_A[name], self.lora_B[name], self.specs[name].scale, self.layout.transposed)

    def delta_weight_canonical(self, name: str) -> torch.Tensor:
        """ΔL in the (d_out, d_in) layout."""
        return delta_weight(self.lora_A[name], self.lora_B[name], self.specs[name].scale)

    def canonical_weight(self) -> torch.Tensor:
        """The base weight W as (d_out, d_in) (a view of a dense weight; dequantized for a quantized base)."""
        if hasattr(self.base_layer, "dequantize"):
            return self.base_layer.dequantize()
        weight = self.base_layer.weight
        return weight.T if self.layout.transposed else weight

    def base_bias(self) -> torch.Tensor | None:
        return getattr(self.base_layer, "bias", None)

    @torch.no_grad()
    def merge(self, names: Sequence[str]) -> None:
        """W ← the variant's merged weight (plain LoRA: W + ΔW) for each named adapter not merged yet (idempotent).

        The forward adds each active adapter's contribution computed from the current W, so adapters whose update
        depends on W (DoRA) merge first: merging keeps the outputs when at most one of the named adapters does.
        """
        names = [n for n in dict.fromkeys(names) if n not in self.merged and n in self.specs]
        names.sort(key=lambda n: self.variant(n).low_rank)  # stable: W-dependent variants first
        if not names:
            return
        weight = self.merged_weight()
        view = weight.T if self.layout.transposed else weight  # (d_out, d_in), writes through
        for name in names:
            new, memo = self.variant(name).merged_weight(view.to(compute_dtype(view.dtype)), self.delta_weight_canonical(name),
                                                         dict(self.variant_params[name]))  # fmt: skip
            view.copy_(new.to(weight.dtype))
            self.merge_memos[name] = memo
            self.merged.append(name)

    def remerge(self, names: Sequence[str]) -> None:
        """Merge ``names`` one at a time in this order: restores a saved ``merged`` list exactly."""
        for name in names:
            self.merge([name])

    @torch.no_grad()
    def unmerge(self) -> None:
        """Invert ``merge`` for every merged adapter, last merged first (idempotent)."""
        if not self.merged:
            return
        weight = self.merged_weight()
        view = weight.T if self.layout.transposed else weight
        while self.merged:
            name = self.merged.pop()
            old = self.variant(name).unmerged_weight(view.to(compute_dtype(view.dtype)), self.delta_weight_canonical(name),
                                                     dict(self.variant_params[name]), self.merge_memos.pop(name))  # fmt: skip
            view.copy_(old.to(weight.dtype))

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
        base_out = out = self.base_layer(x, *args, **kwargs)
        for name in self.active:
            if name not in self.merged:
                out = out + self.variant(name).output(x, base_out, self, name).to(out.dtype)
        if self.merged and torch.is_grad_enabled() and (self.training or out.requires_grad):
            out = self._guard_merged(out)
        return out

    def _guard_merged(self, out: torch.Tensor) -> torch.Tensor:
        """``out``, through an identity whose backward raises if a merged adapter's factors require grad.

        Without it a backward leaves those factors without gradient (the optimizer skips them silently),
        or fails with torch's "does not require grad" when nothing else trains. In training mode the guard
        makes ``out`` require grad, so that the backward reaches it; in eval mode it is added only where
        a graph is built anyway, so merged inference (with or without ``no_grad``) costs nothing more.
        """
        trainable = next(((n, p) for n in self.merged for p in self.adapter_parameters(n) if p.requires_grad), None)
        return out if trainable is None else _MergedGuard.apply(out, trainable[1], trainable[0])

    def train(self, mode: bool = True) -> "LoraLayer":
        """``nn.Module.train``; also forgets what variants kept between forwards (each evaluation starts afresh, which
        matters where a version counter does not see a change: FSDP gathers weights without bumping it)."""
        self.variant_memos.clear()
        return super().train(mode)

    def dropout_p(self, name: str) -> float:
        """The drop probability of adapter ``name``'s input now: its dropout in training, 0 in eval."""
        return self.specs[name].dropout if self.training else 0.0

    def low_rank_output(self, name: str, x: torch.Tensor, dropout: float | None = None) -> torch.Tensor:
        """scale · B A dropout(x), plain LoRA's contribution to the output (``dropout``: default ``dropout_p``)."""
        spec = self.specs[name]
        dropout = self.dropout_p(name) if dropout is None else dropout
        return adapter_output(x, self.lora_A[name], self.lora_B[name], spec.scale, dropout)

    def extra_repr(self) -> str:
        ranks = ", ".join(f"{n}: r={s.r}" for n, s in self.specs.items())
        return f"adapters=[{ranks}], active={list(self.active)}, merged={self.merged}"


class _MergedGuard(torch.autograd.Function):
    """y = x; backward raises. ``param`` (a merged adapter's factor) makes y require grad, so that a
    backward reaches this node even when nothing upstream trains."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, param: torch.Tensor, name: str) -> torch.Tensor:
        ctx.name = name
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        raise LoraLabError(f"adapter {ctx.name!r} is merged into the weights, so it cannot train: call "
                           "loralab.unmerge(model) before training (merge is for inference)")  # fmt: skip


class LoraLinear(LoraLayer):
    """LoRA on ``nn.Linear`` (weight: (d_out, d_in)), or on a 4-bit base that stands in for one.

    With one active plain adapter the forward and backward run as one autograd function
    (:mod:`loralab.lora.fused_linear`); ``fused = False`` keeps the separate path (tests, benchmarks).
    """

    fused: bool = True

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = None if args or kwargs else fused_forward(self, x)
        return super().forward(x, *args, **kwargs) if out is None else out

    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        return base_layer.in_features, base_layer.out_features


class LoraConv1D(LoraLayer):
    """LoRA on transformers' GPT-2 ``Conv1D``, whose weight is stored (d_in, d_out)."""

    layout = CONV1D

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

    layout = EMBEDDING

    @staticmethod
    def io_features(base_layer: nn.Module) -> tuple[int, int]:
        return base_layer.num_embeddings, base_layer.embedding_dim

    @torch.no_grad()
    def init_factors(self, scheme: str, A: torch.Tensor, B: torch.Tensor) -> None:
        nn.init.zeros_(A)
        nn.init.normal_(B)

    def dropout_p(self, name: str) -> float:
        return 0.0

    def low_rank_output(self, name: str, x: torch.Tensor, dropout: float | None = None) -> torch.Tensor:
        base = self.base_layer
        rows = F.embedding(
            x, self.lora_A[name].T, base.padding_idx, base.max_norm, base.norm_type, base.scale_grad_by_freq, base.sparse
        )  # (..., r): A's columns for the tokens
        return F.linear(rows * self.specs[name].scale, self.lora_B[name])
