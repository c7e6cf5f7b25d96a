"""Memory-lean activations for training: keep for backward only what cannot be recomputed cheaply.

A decoder layer of a Llama-style model saves, per token, its two RMSNorm outputs (float32 under
autocast, read again by the LoRA paths of q/k/v and gate/up) and four d_ff-wide tensors in its
SwiGLU MLP (gate, up, silu(gate), and the product h read by down_proj's adapter). Here:

* RMSNorm runs as one autograd function that saves its input x and rstd = 1/√(mean(x²) + ε):
  y = w ⊙ (x·rstd), dx = rstd·(dn − n·mean(dn ⊙ n)) with n = x·rstd and dn = w ⊙ dy;
* SwiGLU h = silu(g) ⊙ u saves g and u only:
  du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g)));
* the outputs y and h, when a later operation saves them for its backward (an adapter's A needs its
  input), are stored as a recipe instead and rebuilt from x, rstd or g, u — which are kept anyway —
  bit for bit as the forward computed them (:class:`Recomputables`, a ``saved_tensors_hooks`` pair).

Per layer this drops two d-wide float32 tensors and two d_ff-wide ones. The lean path replaces a
module's forward only where it reproduces that forward bit for bit (checked on a probe input
per module class), only while gradients are recorded, and not under activation checkpointing,
which already recomputes everything.
"""

from __future__ import annotations

import contextlib
import threading
import types
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVE = threading.local()


class _Recompute:
    """What a saved tensor was replaced by: a function that rebuilds it, shared by every op that saved it.

    Every pack happens in the forward, before any unpack in backward, so ``pending`` is final when
    backward starts: the first unpack rebuilds, the others reuse it, the last one lets it go
    (q, k and v's adapters read one norm output: one rebuild, not three).
    """

    __slots__ = ("rebuild", "pending", "value")

    def __init__(self, rebuild: Callable[[], torch.Tensor]):
        self.rebuild = rebuild
        self.pending = 0
        self.value: torch.Tensor | None = None

    def get(self) -> torch.Tensor:
        value = self.value if self.value is not None else self.rebuild()
        self.pending -= 1
        self.value = value if self.pending > 0 else None
        return value


class Recomputables:
    """Tensors that saved-for-backward storage may hold as a recipe, while this context is active.

    ``add(t, rebuild)`` marks ``t``; a later operation that saves ``t`` for backward then stores
    ``rebuild`` (which must return ``t``'s exact values from tensors kept anyway), and backward calls
    it. Tensors are matched by identity (a weak reference), never by address, so a freed and reused
    buffer can never be mistaken for a marked one.
    """

    def __init__(self) -> None:
        self._marked: dict[int, tuple[weakref.ref, _Recompute]] = {}

    def add(self, tensor: torch.Tensor, rebuild: Callable[[], torch.Tensor]) -> None:
        self._marked[id(tensor)] = (weakref.ref(tensor), _Recompute(rebuild))

    def _pack(self, tensor: torch.Tensor) -> Any:
        entry = self._marked.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            entry[1].pending += 1
            return entry[1]
        return tensor

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        return packed.get() if isinstance(packed, _Recompute) else packed

    @contextlib.contextmanager
    def active(self):
        """Make this set the current one (for :func:`mark`) and store marked tensors as recipes."""
        previous = getattr(_ACTIVE, "current", None)
        _ACTIVE.current = self
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                yield self
        finally:
            _ACTIVE.current = previous
            self._marked.clear()


def mark(tensor: torch.Tensor, rebuild: Callable[[], torch.Tensor]) -> None:
    """Mark ``tensor`` as rebuildable in the active :class:`Recomputables`, if there is one."""
    current = getattr(_ACTIVE, "current", None)
    if current is not None:
        current.add(tensor, rebuild)


def _normalised(x: torch.Tensor, rstd: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """w ⊙ (x·rstd) in rstd's dtype, cast back to x's dtype before the weight: Llama's RMSNorm order."""
    return weight * (x.to(rstd.dtype) * rstd).to(x.dtype)


class _RMSNorm(torch.autograd.Function):
    """y = w ⊙ x/√(mean(x²) + ε) computed in ``compute``; x: (..., d), w: (d,). Saves x and rstd: (..., 1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float, compute: torch.dtype) -> torch.Tensor:
        rstd = torch.rsqrt(x.to(compute).pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, rstd, weight)
        return _normalised(x, rstd, weight)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, rstd, weight = ctx.saved_tensors
        n = x.to(rstd.dtype) * rstd
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            per_channel = (grad_y * n.to(x.dtype)).reshape(-1, x.shape[-1]).sum(0)
            grad_w = per_channel.to(weight.dtype)
        if ctx.needs_input_grad[0]:
            grad_n = (grad_y * weight).to(rstd.dtype)
            grad_x = (rstd * (grad_n - n * (grad_n * n).mean(-1, keepdim=True))).to(x.dtype)
        return grad_x, grad_w, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, compute: torch.dtype = torch.float32) -> torch.Tensor:
    """Llama's RMSNorm (statistics in ``compute``, float32 as transformers does), saving x and rstd only;
    its output is rebuilt if a later op saves it."""
    y = _RMSNorm.apply(x, weight, eps, compute)
    node = y.grad_fn
    if node is not None:
        # x, rstd and w are what the node saved: rebuild from those, so nothing new is kept alive
        mark(y, lambda: _normalised(*node.saved_tensors))
    return y


class _SwiGLU(torch.autograd.Function):
    """h = silu(g) ⊙ u; g, u: (..., d_ff). Saves g and u."""

    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        gate, up = ctx.saved_tensors
        grad_up = grad_h * F.silu(gate) if ctx.needs_input_grad[1] else None
        grad_gate = torch.ops.aten.silu_backward(grad_h * up, gate) if ctx.needs_input_grad[0] else None
        return grad_gate, grad_up


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) ⊙ up, saving gate and up only; the product is rebuilt if a later op saves it."""
    h = _SwiGLU.apply(gate, up)
    node = h.grad_fn
    if node is not None:
        mark(h, lambda: (lambda g, u: F.silu(g) * u)(*node.saved_tensors))
    return h


# The lean forwards are bound methods (types.MethodType), so that copy.deepcopy rebinds them to the copy.
def _lean_rms_norm_forward(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    if not torch.is_grad_enabled():
        return type(self).forward(self, hidden_states)
    return rms_norm(hidden_states, self.weight, self.variance_epsilon)


def _lean_mlp_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_grad_enabled():
        return type(self).forward(self, x)
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def _scoped_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The module's own forward inside a fresh :class:`Recomputables`, unless one is already active."""
    if not torch.is_grad_enabled() or getattr(_ACTIVE, "current", None) is not None:
        return type(self).forward(self, *args, **kwargs)
    with Recomputables().active():
        return type(self).forward(self, *args, **kwargs)


def _is_rms_norm(module: nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (type(module).__name__.endswith("RMSNorm") and isinstance(weight, torch.Tensor)
            and weight.dim() == 1 and isinstance(getattr(module, "variance_epsilon", None), float))  # fmt: skip


def _is_swiglu_mlp(module: nn.Module) -> bool:
    return all(isinstance(getattr(module, name, None), nn.Module) for name in ("gate_proj", "up_proj", "down_proj", "act_fn"))


def _same_forward(module: nn.Module, lean: Callable, width: int) -> bool:
    """Whether ``lean`` gives ``original``'s output bit for bit on a small probe (eval mode: no dropout)."""
    parameters = [p for p in module.parameters() if p.is_floating_point()]
    frozen = [p for p in parameters if not p.requires_grad]
    parameter = (frozen or parameters or [None])[0]
    if parameter is None:
        return False
    was_training = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        generator = torch.Generator().manual_seed(0)
        probe = torch.randn(2, 3, width, generator=generator).to(parameter.device, parameter.dtype)
        with torch.enable_grad(), Recomputables().active():
            want = type(module).forward(module, probe.clone().requires_grad_())
            got = lean(module, probe.clone().requires_grad_())
        return want.dtype == got.dtype and want.shape == got.shape and torch.equal(want, got)
    except Exception:  # noqa: BLE001 - a module the lean path cannot run is simply left as it is
        return False
    finally:
        for m, mode in was_training:
            m.training = mode


@dataclass(frozen=True)
class LeanReport:
    """How many RMSNorms and SwiGLU MLPs run the lean path, and the module classes left as they were."""

    norms: int
    mlps: int
    skipped: tuple[str, ...]


def enable_lean_activations(model: nn.Module) -> LeanReport:
    """Give the model's RMSNorms and SwiGLU MLPs their lean forward where it matches theirs bit for bit.

    Idempotent. Call after adapters are added (the MLP's projections are called as they are then).
    A module whose forward was already replaced on the instance (by another tool) is left alone.
    """
    verdicts: dict[tuple[type, str], bool] = {}
    counts = {"norm": 0, "mlp": 0}
    parents: dict[int, nn.Module] = {}
    for name, module in model.named_modules():
        if _is_rms_norm(module):
            kind, lean, width = "norm", _lean_rms_norm_forward, module.weight.shape[0]
        elif _is_swiglu_mlp(module) and _is_silu(module.act_fn):
            kind, lean, width = "mlp", _lean_mlp_forward, _in_features(module.gate_proj)
        else:
            continue
        current = module.__dict__.get("forward")
        if current is not None:
            counts[kind] += getattr(current, "__func__", None) is lean
            continue
        key = (type(module), kind)
        if key not in verdicts:
            verdicts[key] = width is not None and _same_forward(module, lean, width)
        if not verdicts[key]:
            continue
        module.forward = types.MethodType(lean, module)
        counts[kind] += 1
        parent = model.get_submodule(name.rsplit(".", 1)[0] if "." in name else "")
        parents[id(parent)] = parent
    for parent in parents.values():
        if "forward" not in parent.__dict__:
            parent.forward = types.MethodType(_scoped_forward, parent)
    skipped = tuple(sorted(cls.__name__ for (cls, _), ok in verdicts.items() if not ok))
    return LeanReport(counts["norm"], counts["mlp"], skipped)


def _is_silu(activation: nn.Module) -> bool:
    probe = torch.linspace(-6, 6, 97)
    try:
        return torch.equal(activation(probe), F.silu(probe))
    except Exception:  # noqa: BLE001
        return False


def _in_features(projection: nn.Module) -> int | None:
    width = getattr(projection, "in_features", None)
    if width is None:
        base = getattr(projection, "base_layer", None)
        width = getattr(base, "in_features", None)
    return width if isinstance(width, int) else None
