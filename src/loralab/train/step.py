"""One optimiser step: micro-batches → objective → backward → clip → schedule → optimiser step.

For micro-batches b_1 … b_k with loss sums ℓ_i and normalisers n_i (see
:mod:`loralab.train.objectives`), the step back-propagates Σ ℓ_i / Σ n_i, micro-batch by
micro-batch, clips the global gradient norm to ``max_grad_norm``, sets each parameter group's
lr to its base lr × ``schedule(step)`` and steps the optimiser. A non-finite loss or gradient
norm raises :class:`NonFiniteStep` with the gradients cleared and the weights untouched; an
update that leaves a trainable weight non-finite (an absurd lr, say) raises
:class:`NonFiniteUpdate` — the weights are then spoiled, and the caller must not record or
save them. ``before_update()`` is called just before the optimiser changes anything (the
trainer holds stop signals from there until the step is recorded, see :mod:`loralab.stops`).

Over W ranks (``parallel``: :mod:`loralab.train.distributed.strategies`) each rank holds its own
micro-batches; the normaliser, loss and metric sums are summed over ranks first, so rank r
back-propagates ℓ_r / Σ_r n_r and the gradients, summed over ranks by the strategy, are those of
one process holding all W shares. Gradients are exchanged after the last micro-batch only.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from loralab.errors import LoraLabError
from loralab.train.objectives import Objective

if TYPE_CHECKING:
    from loralab.train.distributed.strategies import Parallel


class NonFiniteStep(LoraLabError):
    """The loss or the gradient norm of a step is NaN or infinite; nothing was updated."""

    def __init__(self, step: int, quantity: str, value: float) -> None:
        super().__init__(f"step {step + 1}: the {quantity} is {value}")
        self.step, self.quantity, self.value = step, quantity, value


class NonFiniteUpdate(LoraLabError):
    """The optimiser step made trainable weights NaN or infinite (they are spoiled: do not save them)."""

    def __init__(self, step: int, names: list[str]) -> None:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        super().__init__(f"step {step + 1}: the update made {shown} non-finite")
        self.step, self.names = step, names


class EmptyStep(LoraLabError):
    """No micro-batch of the step has anything to learn from (normaliser 0)."""


@dataclass(frozen=True)
class StepResult:
    """What one step did: the normalised loss, the gradient norm before clipping, the lr multiplier
    used, the normaliser and input tokens it covered, its normalised metrics and its wall time."""

    loss: float
    grad_norm: float
    lr_multiplier: float
    normaliser: int
    tokens: int
    metrics: dict[str, float]
    seconds: float


class TrainStep:
    """Callable ``step(s, batches)``; build it before restoring an optimiser state (it keeps the base lrs)."""

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        schedule: Callable[[int], float],
        max_grad_norm: float = 1.0,
        autocast: Callable[[], object] | None = None,
        before_update: Callable[[], None] | None = None,
        parallel: Parallel | None = None,
    ) -> None:
        self.parallel = parallel  # None: one process; else the model called is parallel.module
        model = parallel.module if parallel is not None else model
        self.model, self.objective, self.optimizer, self.schedule = model, objective, optimizer, schedule
        self.max_grad_norm = max_grad_norm if max_grad_norm > 0 else math.inf
        self.autocast = autocast
        self.before_update = before_update
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        names = {id(p): name for name, p in model.named_parameters()}
        self.named_params = [(names.get(id(p), f"parameter {i}"), p) for i, p in enumerate(self.params)]
        self.device = next(model.parameters()).device

    def __call__(self, step: int, batches: list[dict[str, torch.Tensor]]) -> StepResult:
        begin = time.perf_counter()
        # counted on the host, from the batches as collated: no device read
        total = sum(self.objective.normaliser(batch) for batch in batches)
        tokens = sum(int(batch["attention_mask"].sum()) for batch in batches if "attention_mask" in batch)
        if self.parallel is not None:
            total = round(self.parallel.sum([total])[0])
        if total == 0:
            raise EmptyStep(f"step {step + 1}: nothing to learn from in the batch (are all responses truncated away?)")
        # the loss and metric sums stay on the device until the step's one read (read_sums), so the host
        # queues every micro-batch without waiting for the device (a GPU runs ahead)
        loss_sums: list[torch.Tensor] = []
        metric_sums: dict[str, list[torch.Tensor | float]] = {}
        for index, batch in enumerate(batches):
            batch = {key: self.to_device(value) for key, value in batch.items()}
            sync = self.parallel.micro_batch(index == len(batches) - 1) if self.parallel is not None else nullcontext()
            with sync:
                with (self.autocast or nullcontext)():
                    out = self.objective(self.model, batch)
                (out.loss_sum / total).backward()
            loss_sums.append(out.loss_sum.detach())
            for key, value in out.metrics.items():
                metric_sums.setdefault(key, []).append(value)
        keys = list(metric_sums)  # the same order on every rank (the same objective)
        if self.parallel is not None:
            loss_sum, *values = self.read_sums([loss_sums, *(metric_sums[k] for k in keys)])
            loss_sum, tokens, *values = self.parallel.sum([loss_sum, tokens, *values])
            tokens = round(tokens)
            grad_norm = self.parallel.clip_grad_norm(self.params, self.max_grad_norm)
        else:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            loss_sum, *values, grad_norm = self.read_sums([loss_sums, *(metric_sums[k] for k in keys), [norm]])
        loss = loss_sum / total
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            quantity, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", grad_norm)
            raise NonFiniteStep(step, quantity, value)
        multiplier = self.schedule(step)
        if self.before_update is not None:
            self.before_update()
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * multiplier
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        spoiled = non_finite_parameters(self.named_params if self.parallel is None else
                                        [(n, p.to_local() if hasattr(p, "to_local") else p) for n, p in self.named_params])  # fmt: skip
        if self.parallel is not None and self.parallel.sum([len(spoiled)])[0] and not spoiled:
            spoiled = ["a weight shard of another rank"]  # every rank stops at the same step
        if spoiled:
            raise NonFiniteUpdate(step, spoiled)
        metrics = {key: value / total for key, value in zip(keys, values)}
        return StepResult(loss, grad_norm, multiplier, total, tokens, metrics, time.perf_counter() - begin)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """A host tensor on the step's device; to a GPU through pinned (page-locked) memory, so the copy is
        asynchronous and the host goes on queueing work."""
        if self.device.type == "cuda" and tensor.device.type == "cpu":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def read_sums(self, groups: list[list[torch.Tensor | float]]) -> list[float]:
        """Σ of each group of scalars (tensors on the device, or numbers), summed in float64 (as Python floats
        were) and read to the host in one transfer."""
        sums = [torch.stack([torch.as_tensor(v, device=self.device).to(torch.float64).reshape(()) for v in group]).sum()
                for group in groups]  # fmt: skip
        return torch.stack(sums).tolist() if sums else []


def non_finite_parameters(named: list[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the parameters holding NaN or ±inf.

    One fused norm per parameter first (cheap), read to the host in one transfer; only a parameter
    whose norm is not finite (it may merely have overflowed) is checked element by element.
    """
    named = [(name, p) for name, p in named if p.is_floating_point()]
    if not named:
        return []
    norms = torch._foreach_norm([p.detach() for _, p in named])
    finite = torch.isfinite(torch.stack([n.float() for n in norms]))
    if bool(finite.all()):  # the one read of a healthy step
        return []
    return [name for (name, p), ok in zip(named, finite.tolist()) if not ok and not bool(torch.isfinite(p.detach()).all())]
