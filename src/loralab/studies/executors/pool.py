"""The ``local`` executor with ``--workers N``: N trials at a time, each a ``python -m loralab train`` subprocess.

On a machine with GPUs each worker owns one GPU (the trial sees only it: ``CUDA_VISIBLE_DEVICES``),
so N is at most the number of GPUs. On CPU the cores are split: each trial gets
``cores // N`` threads (``OMP_NUM_THREADS``, at least 1). A trial's output goes to
``<study folder>/logs/<trial>.log`` (appended on each attempt); a failed trial's error is the last
line of its log (loralab prints a user error as one line) and its exit status. ``on_done`` is
called from the thread that called :meth:`PoolExecutor.run`, as each trial ends.

Stop signals (Ctrl-C, SIGTERM, SIGHUP to the study): no new trial starts, SIGTERM is forwarded
to the running trials, which save a checkpoint of their last complete step and exit; then the
study stops with :class:`~loralab.stops.Stopped`, and running it again resumes them (a trial the
signal reached after it wrote its final output is done: :func:`.base.ended_trial`). A second
signal while waiting kills the trials (their last checkpoints are kept). Trials run in their
own sessions, so a Ctrl-C in the terminal reaches them once, through the study. A study process
that is killed outright (SIGKILL) cannot stop its trials: they run on to their end.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections import deque
from types import FrameType
from typing import NamedTuple

from loralab.errors import ConfigError
from loralab.process import say
from loralab.stops import SignalHandlers, Stopped
from loralab.studies.executors.base import Executor, OnDone, TrialJob, ended_trial
from loralab.studies.executors.subprocess_trial import TrialProcessResult, run_trial_process


class WorkerSlot(NamedTuple):
    """One worker: what it is called in messages, and the environment of the trials it runs."""

    label: str
    env: dict[str, str]


def visible_gpus() -> list[str]:
    """The CUDA device ids this process may use (as CUDA_VISIBLE_DEVICES names them), none without CUDA."""
    import torch

    count = torch.cuda.device_count()
    if not count:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(count)]
    return ids[:count]


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_slots(workers: int, gpus: list[str] | None = None, cores: int | None = None) -> list[WorkerSlot]:
    """``workers`` slots: one GPU each where there are GPUs (an error if too few), else a share of the cores."""
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        if workers > len(gpus):
            raise ConfigError(f"--workers {workers} is more than the {len(gpus)} GPU{'s' * (len(gpus) > 1)} of this machine "
                              f"(one trial per GPU)")  # fmt: skip
        return [WorkerSlot(f"GPU {gpu}", {"CUDA_VISIBLE_DEVICES": gpu}) for gpu in gpus[:workers]]
    threads = str(max(1, (usable_cores() if cores is None else cores) // workers))
    return [WorkerSlot(f"worker {i}, {threads} thread{'s' * (threads != '1')}", {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
            for i in range(1, workers + 1)]  # fmt: skip


class PoolExecutor(Executor):
    """``workers`` trials at a time in subprocesses, over :func:`worker_slots` (checked when it is made)."""

    name = "local"

    def __init__(self, workers: int, slots: list[WorkerSlot] | None = None) -> None:
        super().__init__(workers)
        self.slots = slots if slots is not None else worker_slots(workers)
        self._stop: int | None = None  # the signal the running trials are asked for (read by their threads)

    def run(self, jobs: list[TrialJob], on_done: OnDone, *, progress: bool = True) -> None:
        self._stop = None
        results: queue.Queue[tuple[TrialJob, WorkerSlot, TrialProcessResult]] = queue.Queue()
        todo = deque(enumerate(jobs, 1))
        free = list(reversed(self.slots))
        threads: dict[str, threading.Thread] = {}
        with SignalCount() as signals:
            try:
                while todo or threads:
                    if signals.count and self._stop is None:
                        self._stop = signal.SIGTERM
                        todo.clear()
                        if threads:
                            say(f"loralab study: stopping: waiting for {len(threads)} running trial{'s' * (len(threads) > 1)} "
                                "to save a checkpoint (again to kill them)")  # fmt: skip
                    elif signals.count > 1 and self._stop != signal.SIGKILL:
                        self._stop = signal.SIGKILL
                        say("loralab study: killing the running trials (their last checkpoints are kept)")
                    while todo and free:
                        index, job = todo.popleft()
                        slot = free.pop()
                        log = job.run_dir.parent / "logs" / f"{job.name}.log"
                        say(f"loralab study: trial {index}/{len(jobs)} {job.name} started ({slot.label}; log {log})")
                        thread = threading.Thread(target=self._run_one, args=(job, slot, str(log), results), daemon=True)
                        threads[job.name] = thread
                        thread.start()
                    try:
                        job, slot, result = results.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    threads.pop(job.name).join()
                    free.append(slot)
                    error, stopped = ended_trial(job, result.error, result.stopped)
                    if stopped:
                        say(f"loralab study: trial {job.name} stopped; running the study again resumes it")
                    else:
                        if error is None:
                            say(f"loralab study: trial {job.name} finished in {result.seconds:.1f} s")
                        on_done(job, error, result.seconds)
            except BaseException:  # a bug or a failed write in on_done: stop the trials before going
                self._stop = self._stop or signal.SIGTERM
                for thread in threads.values():
                    thread.join()
                raise
        if signals.count:
            raise Stopped(signals.first)

    def _run_one(self, job: TrialJob, slot: WorkerSlot, log: str, results: queue.Queue) -> None:
        try:
            result = run_trial_process(job.argv(), log, env=slot.env, stop=lambda: self._stop)
        except Exception as err:  # noqa: BLE001 - e.g. the log cannot be written: the trial's failure, not the study's
            result = TrialProcessResult(f"{type(err).__name__}: {err}", 0.0, "", False)
        results.put((job, slot, result))


class SignalCount(SignalHandlers):
    """Count stop signals (main thread only) instead of raising: the loop decides what each one does."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first = signal.SIGINT

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.count:
            self.first = signum
        self.count += 1
