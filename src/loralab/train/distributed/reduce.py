"""Sums over ranks: what every rank needs to agree on after it has done its share.

For ranks r = 0 … W−1 holding values x_r (floats), :func:`sum_over_ranks` returns Σ_r x_r on every
rank, in float64 (the counts summed are integers well below 2**53, so they stay exact). The step
uses it for the normaliser N = Σ_r N_r (labelled tokens, pairs), the loss sum and the metric sums,
so a step over W ranks reports and back-propagates what one process with the W shares would.
"""

# no "from __future__ import annotations": DDP checks the hook's annotations as objects
import torch
import torch.distributed as dist


def _device() -> torch.device:
    """Where the backend's collectives run: cuda for nccl, cpu otherwise."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_ranks(values: list[float]) -> list[float]:
    """[Σ_r values_r[i] for each i], the same list on every rank (one all-reduce)."""
    if not values:
        return []
    tensor = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def max_over_ranks(value: int) -> int:
    """max_r value_r on every rank (one all-reduce)."""
    tensor = torch.tensor([value], dtype=torch.int64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def sum_gradients_hook(state: object, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: the gradient bucket summed over ranks (DDP's default divides by W).

    Each rank back-propagates ℓ_r / N with N the global normaliser, so the full gradient is
    Σ_r ∇(ℓ_r / N): a sum, not a mean.
    """
    work = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])
