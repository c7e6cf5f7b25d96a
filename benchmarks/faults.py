"""Fault injection: stop real training processes with real signals at random moments, resume, compare.

    python benchmarks/faults.py --cycles 30 [--signals KILL,INT,TERM,HUP] [--seed 0] [--steps 24]

Each run trains a tiny random Llama with LoRA (dropout on, so the RNG state matters) through
the ``loralab`` CLI in a child process. A cycle waits until the run has recorded a random number
of steps (or a random fraction of a second for early kills), sends a signal, waits for the
process to end, checks every checkpoint folder it left, and resumes with ``--resume``; once
a run finishes, its metrics and final adapter are compared with an uninterrupted run of the
same recipe, bit for bit. It prints one line per cycle and the table

    cycles | checkpoints corrupted (must be 0) | runs resumed | runs equal to the uninterrupted one (must be all)

A corrupted checkpoint is a folder named ``step-N`` that does not load, holds NaN, or whose
step does not match the metrics recorded before it. Exit status 1 if either rule is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RECORDS = [{"prompt": f"What is {a} plus {b}?", "response": f"{a} + {b} = {a + b}.\n#### {a + b}"}
           for a in range(1, 7) for b in range(1, 4)]  # fmt: skip


def write_recipe(folder: Path, steps: int, name: str = "run") -> Path:
    """A tiny LoRA recipe (dropout on adapter and model) training ``steps`` steps into ``folder/runs/name``."""
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    recipe = {
        "name": name, "output_dir": str(folder / "runs"), "method": "lora",
        "model": {"name": "tiny-llama", "dropout": 0.1},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj", "down_proj", "lm_head"]},
        "data": {"path": str(data), "max_length": 64},
        "optimizer": {"lr": 1e-2},
        "train": {"max_steps": steps, "micro_batch_size": 3, "grad_accum": 2, "schedule": "cosine",
                  "warmup_steps": 2, "precision": "fp32", "checkpoint_every": 3, "keep_checkpoints": 2},
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "loralab", *args, "--no-progress"]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(command(*args), env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_to_end(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), env=environment(), capture_output=True, text=True, timeout=600)


def recorded_steps(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def interrupt(process: subprocess.Popen, run: Path, signum: int, after_steps: int, extra_s: float, limit_s: float = 120) -> str:
    """Send ``signum`` once ``after_steps`` steps are recorded (plus ``extra_s``); the process's output."""
    deadline = time.monotonic() + limit_s
    while process.poll() is None and recorded_steps(run) < after_steps and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(extra_s)
    if process.poll() is None:
        process.send_signal(signum)
    out, _ = process.communicate(timeout=limit_s)
    return out


def corrupted_checkpoints(run: Path) -> list[str]:
    """Checkpoint folders with a final name that do not load, hold NaN, or do not match the metrics."""
    sys.path.insert(0, str(ROOT / "src"))
    from loralab.errors import LoraLabError
    from loralab.train.checkpoint import load_checkpoint

    bad = []
    folder = run / "checkpoints"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").is_file() else []
    for path in sorted(folder.glob("step-*")) if folder.is_dir() else []:
        if path.name.endswith(".damaged"):
            bad.append(f"{path.name} (set aside as damaged)")
            continue
        try:
            step, _, state = load_checkpoint(path)
        except LoraLabError as err:
            bad.append(f"{path.name}: {err}")
            continue
        if state["step"] != step or len([m for m in metrics if m["step"] <= step]) < step:
            bad.append(f"{path.name}: step {state['step']} with {len(metrics)} metric records")
    return bad


def same_run(a: Path, b: Path) -> bool:
    """Bit-equal metrics (loss, grad_norm, lr per step) and final adapter tensors."""
    from safetensors.torch import load_file

    keys = ("step", "loss", "grad_norm", "lr")
    metrics = [[{k: json.loads(line)[k] for k in keys} for line in (r / "metrics.jsonl").read_text().splitlines()] for r in (a, b)]
    if metrics[0] != metrics[1]:
        return False
    ta, tb = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in (a, b))
    return ta.keys() == tb.keys() and all(bool((ta[k] == tb[k]).all()) for k in ta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=12)
    parser.add_argument("--signals", default="KILL,INT,TERM,HUP")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    signals = [getattr(signal, f"SIG{name.strip().upper()}") for name in args.signals.split(",")]
    with tempfile.TemporaryDirectory(prefix="loralab-faults-") as tmp:
        folder = Path(tmp)
        reference_recipe = write_recipe(folder, args.steps, "reference")
        done = run_to_end("train", str(reference_recipe))
        if done.returncode:
            print(done.stdout + done.stderr)
            return 1
        reference = folder / "runs" / "reference"
        corrupted, runs, equal, run_index, run, process = [], 0, 0, 0, None, None
        for cycle in range(1, args.cycles + 1):
            if run is None:
                run_index += 1
                recipe = write_recipe(folder, args.steps, f"run{run_index}")
                run = folder / "runs" / f"run{run_index}"
                process = start("train", str(recipe))
            elif (run / "recipe.yaml").is_file():
                process = start("train", "--resume", str(run))
            else:  # stopped before it wrote anything (e.g. during start-up): the user just runs it again
                process = start("train", str(recipe))
            signum = rng.choice(signals)
            after = rng.randint(0, args.steps)
            extra = rng.random() * 0.05
            out = interrupt(process, run, signum, recorded_steps(run) + after if after < args.steps else args.steps, extra)
            bad = corrupted_checkpoints(run)
            corrupted += bad
            finished = (run / "adapter" / "adapter_model.safetensors").is_file() and process.returncode == 0
            print(f"cycle {cycle:3d}: {signal.Signals(signum).name:7s} after ≥{after:2d} more steps → exit {process.returncode}, "
                  f"{recorded_steps(run)} steps recorded, {len(bad)} corrupted" + (f" {bad}" if bad else ""), flush=True)  # fmt: skip
            if process.returncode not in (0, -signal.SIGKILL, 128 + signum, -signum):
                print(out[-2000:])
            if finished or cycle == args.cycles:
                if not finished:
                    finish = run_to_end(*(("train", "--resume", str(run)) if (run / "recipe.yaml").is_file() else ("train", str(recipe))))
                    if finish.returncode:
                        print(finish.stdout[-2000:] + finish.stderr[-2000:])
                runs += 1
                equal += same_run(run, reference)
                run = None
        print("\n| cycles | checkpoints corrupted | runs resumed to the end | runs equal to the uninterrupted one |")
        print("|---|---|---|---|")
        print(f"| {args.cycles} | {len(corrupted)} | {runs} | {equal} |")
        return 0 if not corrupted and equal == runs else 1


if __name__ == "__main__":
    sys.exit(main())
