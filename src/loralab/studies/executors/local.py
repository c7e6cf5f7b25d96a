"""The ``local`` executor with one worker: trials one after another in this process.

In-process keeps progress bars and stop signals as in ``loralab train``: Ctrl-C or SIGTERM stops
the running trial after its checkpoint and ends the study (``Stopped`` is a KeyboardInterrupt and
is not caught here); any other error of a trial is reported to ``on_done`` and the study goes on.
"""

from __future__ import annotations

import time

from loralab.process import say
from loralab.studies.executors.base import Executor, OnDone, TrialJob


class InProcessExecutor(Executor):
    name = "local"

    def run(self, jobs: list[TrialJob], on_done: OnDone, *, progress: bool = True) -> None:
        from loralab.train.recipe import load_recipe
        from loralab.train.trainer import resume, train

        for index, job in enumerate(jobs, 1):
            say(f"loralab study: trial {index}/{len(jobs)} {job.name}")
            started = time.monotonic()
            try:
                if job.resume:
                    resume(job.run_dir, progress=progress)
                else:
                    train(load_recipe(job.recipe_path, list(job.overrides)), progress=progress)
            except Exception as err:  # noqa: BLE001 - one trial's mistake or bug must not lose the others
                on_done(job, f"{type(err).__name__}: {err}", time.monotonic() - started)
            else:
                on_done(job, None, time.monotonic() - started)
