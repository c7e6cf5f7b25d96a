"""Executors of a study's trials, one file each, chosen by ``--executor``.

``local``: in this process one after another (:mod:`.local`), or with ``--workers N`` N subprocesses
at a time, one GPU each where there are GPUs (:mod:`.pool`). ``ray``: each trial a task on a Ray
cluster whose nodes share the study folder (:mod:`.ray_cluster`, ``loralab[ray]``).
"""

from __future__ import annotations

from typing import Callable

from loralab.errors import ConfigError
from loralab.studies.executors.base import Executor, TrialJob


def _local(workers: int | None, ray_address: str | None) -> Executor:
    if workers is None or workers == 1:
        from loralab.studies.executors.local import InProcessExecutor

        return InProcessExecutor(1)
    from loralab.studies.executors.pool import PoolExecutor

    return PoolExecutor(workers)


def _ray(workers: int | None, ray_address: str | None) -> Executor:
    from loralab.studies.executors.ray_cluster import RayExecutor

    return RayExecutor(workers, ray_address)


#: name → factory(workers or None, Ray address or None); the modules are imported only when chosen
EXECUTORS: dict[str, Callable[[int | None, str | None], Executor]] = {"local": _local, "ray": _ray}


def make_executor(name: str = "local", workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor ``name`` with ``workers`` trials at a time (None: its default)."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if ray_address and name != "ray":
        raise ConfigError("--ray-address is for --executor ray")
    return EXECUTORS[name](workers, ray_address)


__all__ = ["EXECUTORS", "Executor", "TrialJob", "make_executor"]
