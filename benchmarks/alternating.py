"""What the benchmarks share: the machine in words, workers run in alternating processes, the spread of timings.

Each measurement runs in its own process (peak resident memory only ever grows), and the order of
the kinds flips every round, so that machine noise hits all of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable


def iqr(values: list[float]) -> float:
    """The interquartile range of timings (max − min for fewer than four)."""
    if len(values) < 4:
        return max(values) - min(values)
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def machine(device: str) -> str:
    """The CPU kind (native bf16 or not) or the GPU's name."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    from loralab.models.precision import cpu_flags

    flags = cpu_flags() or set()
    return "AVX512-BF16" if "avx512_bf16" in flags else "AMX-BF16" if "amx_bf16" in flags else "AVX2 only, no native bf16"


def run_alternating(script: str, kinds: tuple[str, ...], rounds: int, passthrough: list[str]) -> dict[str, list[dict]]:
    """{kind: [the JSON line each ``script --worker=kind`` process printed last]}, ``rounds`` per kind."""
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for round_index in range(rounds):
        for kind in kinds if round_index % 2 == 0 else kinds[::-1]:
            done = subprocess.run([sys.executable, script, f"--worker={kind}", *passthrough], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"the {kind} worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
            results[kind].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  round {round_index + 1} {kind}: {results[kind][-1]['tokens_per_s']:.0f} tokens/s, "
                  f"{results[kind][-1]['peak_mb']:.0f} MiB", file=sys.stderr)  # fmt: skip
    return results


def measure(script: str, doc: str, kinds: tuple[str, ...] | Callable[[argparse.Namespace], tuple[str, ...]],
            worker: Callable[[str, argparse.Namespace], dict], *, rounds: int, steps: int, size: tuple[str, int, str],
            options: dict[str, dict] | None = None) -> tuple[argparse.Namespace, dict[str, list[dict]], str] | None:
    """The command line of a step benchmark: ``--rounds --steps --warmup SIZE --precision --device``.

    In a worker process (``--worker=KIND``) prints ``worker(KIND, args)`` as JSON and returns None;
    otherwise resolves the precision, runs every kind ``rounds`` times in alternating processes and
    returns (args, results by kind, the machine in words). ``size``: (flag, default, help), e.g.
    ("--pairs", 8, "preference pairs per step"). ``kinds``: the kinds, or a function of the parsed
    arguments giving the kinds this run measures. ``options``: further flags, {flag: keyword arguments
    of ``add_argument``}, handed on to the workers (those whose value is not None).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=rounds, help="processes per kind (alternating)")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=1)
    flag, default, help_text = size
    parser.add_argument(flag, type=int, default=default, help=help_text)
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                        help="auto: bf16 where the device computes it natively, else fp32 (loralab.models.precision)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", choices=kinds if isinstance(kinds, tuple) else None, help=argparse.SUPPRESS)
    options = options or {}
    for option, spec in options.items():
        parser.add_argument(option, **spec)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return None
    from loralab.models.precision import resolve_precision

    chosen = resolve_precision(args.precision, args.device)
    print(chosen.describe(args.precision), file=sys.stderr)
    args.precision = chosen.name
    passthrough = [f"--steps={args.steps}", f"--warmup={args.warmup}", f"{flag}={getattr(args, flag.lstrip('-'))}",
                   f"--precision={args.precision}", f"--device={args.device}"]  # fmt: skip
    values = {option: getattr(args, option.lstrip("-").replace("-", "_")) for option in options}
    passthrough += [f"{option}={value}" for option, value in values.items() if value is not None]
    measured = kinds if isinstance(kinds, tuple) else kinds(args)
    return args, run_alternating(script, measured, args.rounds, passthrough), machine(args.device)


def timed_steps(step: Callable[[], float], warmup: int, steps: int, device) -> tuple[list[float], float]:
    """(losses of every step, warm-up included; seconds of the ``steps`` timed ones), GPU work awaited."""
    import time

    import torch

    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    losses = [step() for _ in range(warmup)]
    wait()
    start = time.perf_counter()
    losses += [step() for _ in range(steps)]
    wait()
    return losses, time.perf_counter() - start
