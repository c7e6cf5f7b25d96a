"""Distributed runs for tests (imported as ``distributed_runs``): tiny recipes written as YAML, ranks started by torchrun in subprocesses (Gloo, CPU).

Every subprocess has a timeout, so a test can fail but never hang.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

HOOKS = Path(__file__).parent / "rank_hooks"
#: the tiny recipe of these tests: 8 examples, micro-batches of 2 per rank × 2 ranks = 4 (or 4 on one process)
SETTINGS = ("train.max_steps=4", "train.grad_accum=2", "optimizer.lr=1e-2")


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def adapter(run_dir: Path) -> dict:
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))


def environment(**hooks: str) -> dict[str, str]:
    """This environment with the rank hooks (rank_hooks/sitecustomize.py) and ``hooks`` set."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    env.update(hooks)
    return env


def loralab(*args: str, timeout: float = 120, **hooks: str) -> subprocess.CompletedProcess:
    """``python -m loralab *args`` (e.g. ``train R.yaml --nproc 2``), output captured."""
    return subprocess.run([sys.executable, "-m", "loralab", *args], capture_output=True, text=True, timeout=timeout,
                          env=environment(**hooks))  # fmt: skip


def torchrun(*args: str, nproc: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc-per-node N -m loralab *args``: torchrun as a user types it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "-m", "loralab", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment())
