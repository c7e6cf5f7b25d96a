"""Test hooks for the ranks of a distributed run (on PYTHONPATH only in tests/train/distributed).

In a process that torchrun started (LOCAL_RANK is set):
- LORALAB_TEST_STEP_SECONDS=s: every training step sleeps s seconds first (time to send a signal mid-run);
- LORALAB_TEST_DIE=r:k: rank r kills itself with SIGKILL at the start of step k (0-based), as an OOM killer would;
- LORALAB_TEST_PIDS=folder: each rank writes its process id to folder/rank-R.pid (to signal one rank alone).
"""

import os

if os.environ.get("LOCAL_RANK") is not None and os.environ.get("LORALAB_TEST_PIDS"):
    with open(os.path.join(os.environ["LORALAB_TEST_PIDS"], f"rank-{os.environ['RANK']}.pid"), "w") as _file:
        _file.write(str(os.getpid()))

if os.environ.get("LOCAL_RANK") is not None and (os.environ.get("LORALAB_TEST_STEP_SECONDS") or os.environ.get("LORALAB_TEST_DIE")):
    import signal
    import time

    from loralab.train.trainer import Trainer

    _real_step = Trainer._step
    _pause = float(os.environ.get("LORALAB_TEST_STEP_SECONDS") or 0)
    _die = os.environ.get("LORALAB_TEST_DIE")

    def _step(self, step):
        if _die and [int(x) for x in _die.split(":")] == [int(os.environ["RANK"]), step]:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(_pause)
        return _real_step(self, step)

    Trainer._step = _step
