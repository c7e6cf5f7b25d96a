#!/usr/bin/env python
"""NF4 dequantisation of one weight to the compute dtype: loralab eager and compiled, torchao, bitsandbytes (#17).

One weight W (``--shape``, default 2048 × 8192, N(0, 1), seed 0) in ``--dtype`` (bf16 or fp32) is
quantized to NF4 (blocks of 64, fp32 absmax scales) and dequantized, Ŵ = NF4[code] · absmax in
``--dtype``, by each implementation installed and able to run on ``--device``:

* ``loralab eager``: ``loralab.quant.blockwise.dequantize_nf4`` (a 256-entry table of byte pairs,
  one gather, one multiply), what ``NF4Linear`` runs on a CPU without bitsandbytes;
* ``loralab compiled``: ``loralab.quant.fused_dequant.dequantize_nf4_fused`` (``torch.compile``,
  one generated kernel; what ``NF4Linear`` runs on CUDA); its first call, the compilation for this
  shape and dtype, is reported apart and not timed;
* ``torchao NF4Tensor``: ``to_nf4(W)`` and then ``.to(dtype)`` (``get_original_weight``), its own
  format: a 4-decimal code book in W's dtype and always double-quantized scales (their
  dequantisation, n/64 values, is part of its time); needs numel divisible by 64 · 256;
* ``bitsandbytes``: ``bitsandbytes.functional.dequantize_4bit`` fed loralab's codes and fp32 scales
  (the same format: high nibble first, same code book), on the CPU its C++ kernel (0.50.2 reads
  the wrong scales when a row is not a whole number of blocks, d_in % 64 ≠ 0, on some CPUs: seen with AVX-512, not with AVX2 only), on CUDA its kernel.
  ``NF4Linear`` runs this on a CPU where bitsandbytes is installed (``loralab.quant.library_dequant``,
  the weight passed flat, which avoids that misreading).

An implementation that is not installed or fails here is listed as "n/a (why)". The repetitions
are interleaved (each round runs every implementation once, the order rotated from round to round,
so that machine noise hits all alike) after ``--warmup`` untimed rounds. On CUDA each call is timed
with CUDA events after a ``torch.cuda.synchronize()``. Every call allocates its output; on the CPU
a fresh buffer of this size comes from mmap and its first touch (page faults) is part of the time
(measured ≈ 9 ms for 33.6 MB against 1.2 ms to fill reused memory, on the 2-core Xeon), which
dominates the fastest kernel and makes its times bimodal: see the min column. Printed per
implementation: the median, IQR and minimum in ms, GB/s of output written (numel · bytes per element / median), the ratio of its median
to loralab eager's, and whether its output equals loralab eager's bit for bit (PASS) or else the
max |Δ|, the relative error ‖Δ‖/‖Ŵ‖ and the share of elements that differ (FAIL; expected for
torchao, whose code book, codes near midpoints and scales differ).

Run:  .venv/bin/python benchmarks/nf4_dequant.py [--device cpu|cuda] [--shape 2048x8192] [--dtype bf16|fp32]
          [--reps 10] [--warmup 1] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from alternating import iqr
from loralab.quant.blockwise import dequantize_nf4, quantize_nf4
from loralab.quant.codebook import nf4_codebook
from loralab.quant.fused_dequant import dequantize_nf4_fused

BLOCK = 64
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class Impl:
    name: str
    run: Callable[[], torch.Tensor] | None  # None: not available here
    why: str = ""  # why not available, or a note
    setup_s: float | None = None  # one-off cost before the timed calls (compilation)


# -- the implementations ---------------------------------------------------------------------------
def loralab_eager(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype) -> Impl:
    return Impl("loralab eager", lambda: dequantize_nf4(codes, absmax, shape, dtype))


def loralab_compiled(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype, sync) -> Impl:
    name = "loralab compiled"
    start = time.perf_counter()
    first = dequantize_nf4_fused(codes, absmax, shape, dtype)
    sync()
    if first is None:
        return Impl(name, None, "n/a (torch.compile failed on this machine; see the loralab log)")
    return Impl(name, lambda: dequantize_nf4_fused(codes, absmax, shape, dtype), setup_s=time.perf_counter() - start)


def torchao_nf4(weight: torch.Tensor, dtype: torch.dtype) -> Impl:
    name = "torchao NF4Tensor"
    if weight.numel() % (BLOCK * 256):
        return Impl(name, None, f"n/a (torchao needs numel divisible by {BLOCK}·256, got {weight.numel()})")
    module = None
    for path in ("torchao.quantization.quantize_.workflows.nf4.nf4_tensor", "torchao.dtypes.nf4tensor"):
        try:
            module = importlib.import_module(path)
            break
        except ImportError as err:
            why = f"n/a (torchao not importable: {err})"
    if module is None:
        return Impl(name, None, why)
    try:
        nf4 = module.to_nf4(weight)
        nf4.to(dtype)
    except Exception as err:  # noqa: BLE001 — whatever fails on this device
        return Impl(name, None, f"n/a ({type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''})")
    return Impl(name, lambda: nf4.to(dtype))


def bitsandbytes_nf4(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype) -> Impl:
    name = "bitsandbytes"
    try:
        functional = importlib.import_module("bitsandbytes.functional")
    except Exception as err:  # noqa: BLE001 — ImportError, or a library that fails to load
        return Impl(name, None, f"n/a (bitsandbytes not importable: {type(err).__name__})")
    state = functional.QuantState(
        absmax=absmax, shape=torch.Size(shape), code=nf4_codebook(codes.device), blocksize=BLOCK, quant_type="nf4", dtype=dtype
    )
    packed = codes.reshape(-1, 1)
    try:
        functional.dequantize_4bit(packed, state)
    except Exception as err:  # noqa: BLE001
        return Impl(name, None, f"n/a ({type(err).__name__}: {str(err).splitlines()[0][:100] if str(err) else ''})")
    note = "(on some CPUs the kernel misreads 2-D scales: d_in % 64 ≠ 0)" if codes.device.type == "cpu" and shape[1] % BLOCK else ""
    return Impl(name, lambda: functional.dequantize_4bit(packed, state), note)


# -- timing ----------------------------------------------------------------------------------------
def timer(device: str) -> Callable[[Callable[[], torch.Tensor]], float]:
    """Seconds of one call: wall clock on the CPU; CUDA events around the call (the GPU idle before) on CUDA."""
    if device == "cuda":

        def timed(fn):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3

        return timed

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return timed


def time_interleaved(impls: list[Impl], device: str, warmup: int, reps: int) -> dict[str, list[float]]:
    """Per implementation, the time of each of ``reps`` rounds; each round runs every implementation once,
    the order rotated from round to round (A B C, B C A, C A B, …)."""
    timed = timer(device)
    for _ in range(warmup):
        for impl in impls:
            impl.run()
    times: dict[str, list[float]] = {impl.name: [] for impl in impls}
    for i in range(reps):
        for impl in impls[i % len(impls):] + impls[: i % len(impls)]:
            times[impl.name].append(timed(impl.run))
    return times


def agreement(out: torch.Tensor, ref: torch.Tensor) -> str:
    if out.dtype == ref.dtype and out.shape == ref.shape and torch.equal(out, ref):
        return "PASS"
    if out.shape != ref.shape:
        return f"FAIL (shape {tuple(out.shape)})"
    diff = out.double() - ref.double()
    rel = (diff.norm() / ref.double().norm().clamp_min(1e-30)).item()
    return f"FAIL (max |Δ| {diff.abs().max().item():.1e}, ‖Δ‖/‖Ŵ‖ {rel:.1e}, {int((diff != 0).sum()) / diff.numel():.0%} differ)"


# -- the machine -----------------------------------------------------------------------------------
def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
    except OSError:
        return "CPU"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "CPU")
    flags = [name for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_tile", "AMX"), ("avx2", "AVX2")) if f" {flag}" in text]
    return f"{model} ({', '.join(flags[:2]) if 'AVX512-BF16' in flags else ', '.join(flags[-1:])})"


def versions() -> str:
    found = [f"torch {torch.__version__}"]
    for name in ("torchao", "bitsandbytes"):
        try:
            found.append(f"{name} {importlib.import_module(name).__version__}")
        except Exception:  # noqa: BLE001
            found.append(f"{name} -")
    return ", ".join(found)


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--shape", default="2048x8192", help="d_out x d_in of the weight, default 2048x8192")
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="the weight's and the output's dtype, default bf16")
    p.add_argument("--reps", type=int, default=10, help="timed rounds (each runs every implementation once), default 10")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first, default 2")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--quick", action="store_true", help="smoke run: 256x1024, 3 reps, 1 warm-up round")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.shape, args.reps, args.warmup = "256x1024", 3, 1
    try:
        args.dims = tuple(int(d) for d in args.shape.lower().split("x"))
        assert len(args.dims) == 2 and all(d > 0 for d in args.dims)
    except (ValueError, AssertionError):
        p.error(f"--shape must look like 2048x8192, got {args.shape!r}")
    if (args.dims[0] * args.dims[1]) % BLOCK:
        p.error(f"the weight's {args.dims[0] * args.dims[1]} elements are not a whole number of blocks of {BLOCK}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype, shape = args.device, DTYPES[args.dtype], args.dims
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    weight = torch.randn(shape, generator=gen, device=device).to(dtype)
    codes, absmax = quantize_nf4(weight, BLOCK)

    impls = [
        loralab_eager(codes, absmax, shape, dtype),
        loralab_compiled(codes, absmax, shape, dtype, sync),
        torchao_nf4(weight, dtype),
        bitsandbytes_nf4(codes, absmax, shape, dtype),
    ]
    ready = [impl for impl in impls if impl.run is not None]
    ref = impls[0].run()
    checks = {impl.name: agreement(impl.run(), ref) for impl in ready}
    sync()
    times = time_interleaved(ready, device, args.warmup, args.reps)

    out_bytes = weight.numel() * torch.empty((), dtype=dtype).element_size()
    print(
        f"\nNF4 dequantisation of one {shape[0]}x{shape[1]} weight to {args.dtype}, block {BLOCK}, fp32 scales: "
        f"{device_name(device)}, threads={torch.get_num_threads()}, reps={args.reps} (warm-up {args.warmup}), {versions()}"
    )
    header = f"{'implementation':<18} {'median ms':>10} {'IQR ms':>8} {'min ms':>8} {'GB/s out':>9} {'× eager':>8}  bits = loralab eager"
    print(header)
    print("-" * len(header))
    eager = statistics.median(times[impls[0].name])
    for impl in impls:
        if impl.run is None:
            print(f"{impl.name:<18} {impl.why}")
            continue
        t = times[impl.name]
        median = statistics.median(t)
        note = f"  {impl.why}" if impl.why else ""
        print(
            f"{impl.name:<18} {median * 1e3:10.2f} {iqr(t) * 1e3:8.2f} {min(t) * 1e3:8.2f} {out_bytes / median / 1e9:9.2f} {median / eager:8.2f}"
            f"  {checks[impl.name]}{note}"
        )
    for impl in impls:
        if impl.setup_s is not None:
            print(f"{impl.name}: first call (compiling for this shape and dtype) {impl.setup_s:.1f} s, not in the table")
    print(f"GB/s out = {out_bytes / 1e6:.1f} MB of output / median; × eager = median / loralab eager's median.")
    if any(impl.name.startswith("torchao") and impl.run is not None for impl in impls):
        print("torchao's bits differ by design: its code book is rounded to 4 decimals and its scales are always double-quantized.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
