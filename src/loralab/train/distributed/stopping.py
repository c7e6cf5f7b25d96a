"""Stopping all ranks together at the same step boundary.

A stop signal (Ctrl-C, SIGTERM from a scheduler or from ``torchrun``, SIGHUP) may reach one rank,
some, or all, at different moments. In a distributed run the trainer keeps stop signals held
(:class:`~loralab.stops.StopSignals`): a signal is only noted. After each step every rank puts the
signal it noted (0: none) into one all-reduce (max), so all ranks see the same answer and, if any
rank was signalled, all raise :class:`~loralab.stops.Stopped` after the same complete step; rank 0
then checkpoints that step.
"""

from __future__ import annotations

from loralab.stops import StopSignals, Stopped
from loralab.train.distributed.reduce import max_over_ranks


def stop_together(stops: StopSignals) -> None:
    """Raise :class:`Stopped` on every rank if a stop signal reached any rank (one all-reduce)."""
    signum = max_over_ranks(stops.pending or 0)
    if signum:
        raise Stopped(signum)
