"""The ``ray`` executor: each trial a Ray task on a Ray cluster (``pip install 'loralab[ray]'``).

A task runs the trial's ``python -m loralab train ...`` as a subprocess on whichever node Ray
places it, in the study's working folder, and returns (error or None, seconds, the tail of its
log). On a cluster with GPUs each task asks for one GPU (Ray sets ``CUDA_VISIBLE_DEVICES``);
on CPUs only, each asks for its share of the cores (``OMP_NUM_THREADS`` set to match).
``--workers N`` caps the trials in flight (default: as many as the cluster's resources allow;
on CPUs, one trial per node's worth of cores).

**Every node must see the same files at the same paths**: the study folder (trials write their
run folders, logs and checkpoints there, and the study reads them back), the recipe, the data
and the working folder the study was started from — put them on a shared filesystem (NFS, a
cluster file system). Each node needs loralab installed in the Python that runs Ray, and the
model available. The executor connects when it is made, before the study writes anything: to
``--ray-address``, else ``RAY_ADDRESS`` or a cluster started on this machine with ``ray start``,
else a new local Ray instance; at the end it disconnects (a local instance it started stops). A
Ray session the caller already opened (``ray.init``) is used as it is and left open.

Stop signals (Ctrl-C, SIGTERM, SIGHUP to the study): the running trials are asked, through a
file in the study's ``logs/`` folder, to save a checkpoint and exit; the study then stops with
:class:`~loralab.stops.Stopped`, and running it again resumes them (one that had written its final
output is done). A second signal kills them.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from loralab.errors import ConfigError
from loralab.process import say
from loralab.stops import Stopped
from loralab.studies.executors import subprocess_trial
from loralab.studies.executors.base import Executor, OnDone, TrialJob, ended_trial
from loralab.studies.executors.pool import SignalCount

INSTALL = "pip install 'loralab[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--executor ray needs Ray, which is not installed: {INSTALL} (or pip install ray)") from None
    return ray


class RayExecutor(Executor):
    """Trials as Ray tasks; ``workers`` (None: no cap) trials in flight at most."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        super().__init__(workers or 0)
        self.address = address
        # Ray installed, and the cluster reached, when the executor is made: before the study writes anything
        self.ray = import_ray()
        self._connected_here = not self.ray.is_initialized()
        if self._connected_here:
            self._connect()

    def run(self, jobs: list[TrialJob], on_done: OnDone, *, progress: bool = True) -> None:
        try:
            if jobs:
                self._run(jobs, on_done)
        finally:
            if self._connected_here:  # a Ray that was already connected (by the caller) is left as it was
                self.ray.shutdown()

    def _connect(self) -> None:
        ray, address = self.ray, self.address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"at {address}" if address else "on this machine"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"cannot connect to the Ray cluster {where}: {first}") from None

    def task_options(self) -> tuple[dict[str, Any], dict[str, str], str]:
        """(Ray resources of one trial, its environment, how it is described), from the cluster's resources."""
        ray = self.ray
        if ray.cluster_resources().get("GPU", 0) >= 1:
            return {"num_gpus": 1}, {}, "1 GPU"
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        node_cpus = [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes] or [1]
        total = int(ray.cluster_resources().get("CPU", 1))
        share = max(1, min(total // (self.workers or len(nodes) or 1), max(node_cpus)))
        return {"num_cpus": share}, {"OMP_NUM_THREADS": str(share), "MKL_NUM_THREADS": str(share)}, f"{share} CPU{'s' * (share > 1)}"

    def _run(self, jobs: list[TrialJob], on_done: OnDone) -> None:
        ray = self.ray
        # the task's code travels by value: a Ray worker need not import loralab (torch) to start a trial
        ray.cloudpickle.register_pickle_by_value(subprocess_trial)
        resources, env, described = self.task_options()
        task = ray.remote(max_retries=0, **resources)(subprocess_trial.run_trial_task)
        cwd = os.getcwd()
        logs = jobs[0].run_dir.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stop_file = logs / f".stop-{uuid.uuid4().hex[:12]}"  # asks running trials to stop (shared storage)
        todo = deque(enumerate(jobs, 1))
        in_flight: dict[Any, TrialJob] = {}
        stopping = 0
        try:
            with SignalCount() as signals:
                while todo or in_flight:
                    if signals.count > stopping:
                        stopping = signals.count
                        todo.clear()
                        _write_stop(stop_file, "TERM" if stopping == 1 else "KILL")
                        if in_flight and stopping == 1:
                            say(f"loralab study: stopping: waiting for {len(in_flight)} Ray task{'s' * (len(in_flight) > 1)} "
                                "to save a checkpoint (again to kill them)")  # fmt: skip
                    while todo and (not self.workers or len(in_flight) < self.workers):
                        index, job = todo.popleft()
                        log = str(logs / f"{job.name}.log")  # relative paths are taken from cwd on each node
                        ref = task.remote(job.argv(), log, cwd, env, str(stop_file))
                        in_flight[ref] = job
                        say(f"loralab study: trial {index}/{len(jobs)} {job.name} submitted to Ray ({described}; log {log})")
                    if not in_flight:
                        continue
                    ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                    for ref in ready:
                        job = in_flight.pop(ref)
                        error, seconds, tail, stopped = self._result(ref)
                        error, stopped = ended_trial(job, error, stopped)
                        if stopped:
                            say(f"loralab study: trial {job.name} stopped; running the study again resumes it")
                            continue
                        if error is None:
                            say(f"loralab study: trial {job.name} finished in {seconds:.1f} s")
                        elif tail:
                            say("\n".join(f"  | {line}" for line in tail.splitlines()[-5:]))
                        on_done(job, error, seconds)
            if signals.count:
                raise Stopped(signals.first)
        except BaseException:
            if in_flight:  # an error of ours: ask the trials still out there to stop too
                _write_stop(stop_file, "TERM")
                ray.wait(list(in_flight), num_returns=len(in_flight), timeout=120)
            raise
        finally:
            stop_file.unlink(missing_ok=True)

    def _result(self, ref: Any) -> tuple[str | None, float, str, bool]:
        try:
            return tuple(self.ray.get(ref))  # type: ignore[return-value]
        except self.ray.exceptions.RayError as err:  # the node or worker died, the task was cancelled
            lines = str(err).strip().splitlines()
            return f"Ray: {type(err).__name__}: {lines[-1] if lines else ''}".rstrip(": "), 0.0, "", False


def _write_stop(path: Path, word: str) -> None:
    path.write_text(word + "\n", encoding="utf-8")

