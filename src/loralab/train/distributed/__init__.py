"""Training on several processes (GPUs, machines) with ``torchrun``: DDP and FSDP2.

One process per device, all running the same recipe; ``loralab.process`` says which one writes.

| idea | where |
|---|---|
| the recipe section ``distributed:`` | ``config.py`` |
| ``loralab train --nproc N``: torchrun started for the user, signals forwarded | ``launch.py`` |
| joining the process group (backend, timeout), leaving it, a lost rank as one line | ``setup.py`` |
| sums over ranks (normaliser, loss, metrics; DDP's summing gradient hook) | ``reduce.py`` |
| all ranks stop at the same step boundary | ``stopping.py`` |
| what a world size must fit (no rank without examples) | ``checks.py`` |
| the strategies ``ddp`` and ``fsdp`` (table ``STRATEGIES``) | ``strategies/`` |
| checkpoints of sharded weights (FSDP) through torch.distributed.checkpoint; the final output gathered on rank 0 | ``sharded_checkpoint.py`` |

Nothing here is imported by a single-process run except the recipe section.
"""
