"""Combining adapters into a new one: ``linear``, ``cat`` and ``svd``.

With Δ_i = s_i B_i A_i the update of adapter i and weights w_i:
- ``cat``: B = [B_1 … B_n], A = [w_1 s_1 A_1; …; w_n s_n A_n], rank Σ r_i: exactly Σ w_i Δ_i.
- ``linear``: B = Σ σ_i √|w_i| B_i, A = Σ √|w_i| s_i A_i (σ_i the sign of w_i), same rank: the
  factors are summed, so B·A = Σ w_i Δ_i plus cross terms B_i A_j. Cheap, approximate, and
  needs equal ranks.
- ``svd``: Σ w_i Δ_i truncated to rank ``svd_rank`` (default: the largest r_i) by an SVD of
  the concatenated factors, the best approximation of that rank.
The new adapter has scale 1 (alpha = r) and is added inactive.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from loralab.errors import ConfigError
from loralab.linalg import thin_svd_of_product
from loralab.lora.interface import adapter_modules, check_adapter_name
from loralab.lora.layers import AdapterSpec, LoraLayer
from loralab.lora.registry import registry, require_adapter
from loralab.lora.switching import refresh_trainable

METHODS = ("linear", "cat", "svd")


def combine_adapters(
    model: nn.Module,
    names: Sequence[str],
    weights: Sequence[float] | None = None,
    name: str = "combined",
    method: str = "linear",
    svd_rank: int | None = None,
) -> str:
    """Add adapter ``name`` whose update combines the named adapters' (see module docstring)."""
    check_adapter_name(name)
    names = list(names)
    weights = [1.0] * len(names) if weights is None else [float(w) for w in weights]
    if method not in METHODS:
        raise ConfigError(f"method must be one of {list(METHODS)}, got {method!r}")
    if len(names) < 1 or len(weights) != len(names):
        raise ConfigError(f"give one weight per adapter: {len(names)} adapters, {len(weights)} weights")
    configs = [require_adapter(model, n) for n in names]
    if name in registry(model).configs:
        raise ConfigError(f"the model already has an adapter named {name!r}")
    if svd_rank is not None and (not isinstance(svd_rank, int) or svd_rank < 1):
        raise ConfigError(f"svd_rank must be an integer ≥ 1, got {svd_rank!r}")

    layers = [(p, l) for p, l in adapter_modules(model) if isinstance(l, LoraLayer) and set(names) & set(l.adapter_names())]
    for path, layer in layers:
        for held in sorted(set(names) & set(layer.adapter_names())):
            if not layer.variant(held).low_rank:
                raise ConfigError(f"adapter {held!r} is a {layer.variant(held).name} adapter, whose update is not the "
                                  "product of its factors: combine_adapters cannot combine it exactly (merge it instead)")  # fmt: skip
    factors = {}
    for path, layer in layers:
        held = [(n, w) for n, w in zip(names, weights) if n in layer.specs]
        if method == "linear" and len({layer.specs[n].r for n, _ in held}) > 1:
            raise ConfigError(f"method 'linear' needs equal ranks; {path} has {[layer.specs[n].r for n, _ in held]}. Use 'cat' or 'svd'.")
        factors[path] = _COMBINE[method](layer, held, svd_rank)
    ranks = {path: A.shape[0] for path, (A, _) in factors.items()}
    r = max(ranks.values())
    others = {path: rank for path, rank in ranks.items() if rank != r}
    config = configs[0].replace(
        r=r, alpha=float(r), rslora=False, target_modules=tuple(ranks),
        exclude_modules=None, layers=None, modules_to_save=None,
        rank_pattern={_exact(p): k for p, k in others.items()},
        alpha_pattern={_exact(p): float(k) for p, k in others.items()},
    )  # fmt: skip
    for path, layer in layers:
        A, B = factors[path]
        layer.add(name, AdapterSpec(A.shape[0], 1.0, layer.specs[names[0]].dropout if names[0] in layer.specs else 0.0))
        layer.load_adapter_state(name, dict(zip(layer.layout.keys, (A, B))))
    registry(model).configs[name] = config
    refresh_trainable(model)
    return name


def _exact(path: str) -> str:
    """A pattern that matches exactly this path (dots escaped)."""
    return path.replace(".", r"\.")


@torch.no_grad()
def _cat(layer: LoraLayer, held, _rank) -> tuple[torch.Tensor, torch.Tensor]:
    A = torch.cat([w * layer.specs[n].scale * layer.lora_A[n] for n, w in held], dim=0)
    B = torch.cat([layer.lora_B[n] for n, _ in held], dim=1)
    return A, B


@torch.no_grad()
def _linear(layer: LoraLayer, held, _rank) -> tuple[torch.Tensor, torch.Tensor]:
    A = sum(math.sqrt(abs(w)) * layer.specs[n].scale * layer.lora_A[n] for n, w in held)
    B = sum(math.copysign(math.sqrt(abs(w)), w) * layer.lora_B[n] for n, w in held)
    return A, B


@torch.no_grad()
def _svd(layer: LoraLayer, held, rank) -> tuple[torch.Tensor, torch.Tensor]:
    A_cat, B_cat = _cat(layer, held, None)
    U, S, Vh = thin_svd_of_product(B_cat.float(), A_cat.float())
    k = min(rank or max(layer.specs[n].r for n, _ in held), S.shape[0])
    root = S[:k].sqrt()  # split the singular values evenly between the two factors
    return (root[:, None] * Vh[:k]).to(A_cat.dtype), (U[:, :k] * root).to(B_cat.dtype)


_COMBINE = {"cat": _cat, "linear": _linear, "svd": _svd}
