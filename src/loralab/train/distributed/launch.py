"""``loralab train RECIPE --nproc N``: torchrun started for the user, on this machine.

The command becomes ``python -m loralab.train.distributed.launch --standalone --nproc-per-node N
-m loralab train RECIPE ...``: torchrun's own launcher (``torch.distributed.run``: a rendezvous on a
free local port, one process per rank, every rank stopped when one fails) in a child process. Ctrl-C,
SIGTERM and SIGHUP sent to ``loralab`` are passed on to it, and torchrun passes them to the ranks, which
stop together at the next step boundary (:mod:`~loralab.train.distributed.stopping`; torchrun waits 30 s
before it kills them). Run as a module, this file is that child: it calls torchrun and turns its failure
report (a stack trace) into one line, since every rank has already said what went wrong.
The exit status is the ranks' own (2 for a user mistake, 128 + signal for a stop).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

from loralab.stops import SIGNALS


def launch(nproc: int, train_args: list[str]) -> int:
    """Run ``loralab train *train_args`` on ``nproc`` local processes; returns the exit status."""
    command = [sys.executable, "-m", "loralab.train.distributed.launch", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "loralab", "train", *train_args]  # fmt: skip
    child = subprocess.Popen(command, start_new_session=True)  # a terminal's Ctrl-C reaches it once: from us
    previous = {signum: signal.signal(signum, lambda signum, frame: child.send_signal(signum)) for signum in SIGNALS}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _agent(argv: list[str]) -> int:
    """torchrun with ``argv``, reporting a failed or stopped run in one line instead of a stack trace."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its "sending SIGTERM", "failed (exitcode ...)" lines: we say it in one
    try:
        run(parse_args(argv))
    except ChildFailedError as err:
        codes = {rank: failure.exitcode for rank, failure in err.failures.items()}
        code = next((c for c in codes.values() if c > 0), 1)
        # user mistakes (2) and stops (128 + signal) were said by the ranks; SIGTERM (-15) is torchrun stopping the rest
        if any((c < 0 and c != -signal.SIGTERM) or (c > 0 and c != 2 and c < 128) for c in codes.values()):
            said = ", ".join(f"rank {rank} " + (f"was killed by {signal.Signals(-c).name}" if c < 0 else f"exited with status {c}")
                             for rank, c in sorted(codes.items()))  # fmt: skip
            print(f"loralab: error: {said}; the run stopped (see the messages above)", file=sys.stderr)
        return code
    except SignalException as err:
        return 128 + int(err.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(_agent(sys.argv[1:]))
