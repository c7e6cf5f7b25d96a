"""What the step benchmarks share: the machine in words, and workers run in alternating processes.

Each measurement runs in its own process (peak resident memory only ever grows), and the order of
the kinds flips every round, so that machine noise hits all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys


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
            out = subprocess.run([sys.executable, script, f"--worker={kind}", *passthrough],
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            results[kind].append(json.loads(out.strip().splitlines()[-1]))
            print(f"  round {round_index + 1} {kind}: {results[kind][-1]['tokens_per_s']:.0f} tokens/s, "
                  f"{results[kind][-1]['peak_mb']:.0f} MiB", file=sys.stderr)  # fmt: skip
    return results
