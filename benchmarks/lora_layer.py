#!/usr/bin/env python
"""Forward + backward of one LoRA linear layer: loralab's ``LoraLinear`` against PEFT's ``lora.Linear``.

loralab's layer runs as one fused autograd function (``loralab.lora.fused_linear``); the row
``unfused`` is the same layer with ``fused = False`` (base layer and adapter path as separate nodes).
``--variant dora`` compares DoRA layers instead (PEFT's ``use_dora``, loralab's ``lora/fused_dora.py``), with a
magnitude that is not ‖W + ΔL‖; their gradcheck then checks x only (the norm is a constant for autograd by
design, in PEFT as in loralab, so numerical gradients of A and B differ from both).

For each dtype (fp32, bf16) × dropout (0, p) the two layers get identical frozen base weights and
identical factors A, B (B non-zero), an input x that requires grad and a fixed upstream gradient.
Printed per case:

* the median wall time of forward + backward, repetitions interleaved (loralab, PEFT, loralab, …
  the order rotated every round) so that machine noise hits both alike; with ``--base`` the bare
  frozen base layer takes turns too, and the adapter's own share of the time is shown (median of
  the per-round differences with it);
* the bytes saved for backward during one forward, found with ``saved_tensors_hooks`` and deduped
  by storage: in total, without the input x, and without x and the parameters (W, A, B are held by
  the module anyway, so what is left is what the layer adds to activation memory). Note: a frozen
  ``nn.Linear`` saves only its weight (its input is needed only for the weight's gradient), so x is
  kept by the adapter path, not by the base layer: the "base" row shows what the base saves alone;
* with dropout 0, whether both layers give the same output and gradients for x, A, B; with dropout
  > 0, a float64 ``gradcheck`` of each layer's backward under a fixed dropout mask.

Run:  .venv/bin/python benchmarks/lora_layer.py [--quick] [--verbose] [--base] [--variant lora|dora]
          [--tokens N --dim D --rank R --reps K]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from alternating import iqr

from loralab.lora.layers import AdapterSpec, LoraLinear

try:
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as PeftLinear
except ImportError as exc:  # pragma: no cover - the benchmark needs PEFT as its reference
    raise SystemExit(f"this benchmark compares against PEFT, which is not installed ({exc})")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: relative (Frobenius) error allowed between the two implementations, by dtype
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float64: 1e-10}
MB = 1e6


# -- building the layers ---------------------------------------------------------------------------
@dataclass
class Case:
    """One implementation of the layer, ready to run: the module and its A, B parameters."""

    impl: str
    layer: nn.Module
    A: nn.Parameter | None
    B: nn.Parameter | None


def frozen_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    d_out, d_in = weight.shape
    lin = nn.Linear(d_in, d_out, bias=bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
    lin.requires_grad_(False)
    return lin


def build_cases(d_in: int, d_out: int, r: int, dropout: float, dtype: torch.dtype, bias: bool, seed: int,
                variant: str = "lora") -> dict[str, Case]:
    """loralab's and PEFT's layer, and the bare base layer, with the same weights (copied); for DoRA the same
    magnitude too, ‖W + ΔL‖ scaled per row by a factor in [0.5, 1.5)."""
    gen = torch.Generator().manual_seed(seed)
    W = (torch.randn(d_out, d_in, generator=gen) / d_in**0.5).to(dtype)
    b = (torch.randn(d_out, generator=gen) * 0.1).to(dtype) if bias else None
    A = (torch.randn(r, d_in, generator=gen) / d_in**0.5).to(dtype)
    B = (torch.randn(d_out, r, generator=gen) / r**0.5).to(dtype)  # non-zero, unlike at init
    alpha = 2 * r  # PEFT's scaling = lora_alpha / r = 2.0
    scale = alpha / r

    ours = LoraLinear(frozen_linear(W, b))
    ours.add("default", AdapterSpec(r=r, scale=scale, dropout=dropout, init="kaiming", variant=variant))
    ours.set_active(["default"])
    dora = variant == "dora"
    with torch.no_grad():
        ours.lora_A["default"].copy_(A)
        ours.lora_B["default"].copy_(B)
        if dora:
            norm = torch.linalg.vector_norm(W.double() + scale * B.double() @ A.double(), dim=1)
            magnitude = (norm * (0.5 + torch.rand(d_out, generator=gen, dtype=torch.float64))).to(dtype)
            ours.variant_params["default"]["magnitude"].copy_(magnitude)

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, use_dora=dora)
    peft = PeftLinear(frozen_linear(W, b), adapter_name="default", config=config, r=r, lora_alpha=alpha, use_dora=dora)
    peft.to(dtype)
    with torch.no_grad():
        peft.lora_A["default"].weight.copy_(A)
        peft.lora_B["default"].weight.copy_(B)
        if dora:
            peft.lora_magnitude_vector["default"].weight.copy_(magnitude)
    peft.base_layer.requires_grad_(False)

    for layer in (ours, peft):
        layer.train()
        assert not layer.base_layer.weight.requires_grad
    assert peft.scaling["default"] == scale
    assert ours.lora_A["default"].dtype == dtype and peft.lora_A["default"].weight.dtype == dtype

    separate = LoraLinear(frozen_linear(W, b))  # the same layer with its fused forward/backward switched off
    separate.add("default", AdapterSpec(r=r, scale=scale, dropout=dropout, init="kaiming", variant=variant))
    separate.set_active(["default"])
    separate.load_state_dict(ours.state_dict())
    separate.fused = False
    separate.train()

    base = frozen_linear(W, b)
    return {
        "loralab": Case("loralab", ours, ours.lora_A["default"], ours.lora_B["default"]),
        "unfused": Case("unfused", separate, separate.lora_A["default"], separate.lora_B["default"]),
        "peft": Case("peft", peft, peft.lora_A["default"].weight, peft.lora_B["default"].weight),
        "base": Case("base", base, None, None),
    }


# -- one step --------------------------------------------------------------------------------------
def clear_grads(case: Case, x: torch.Tensor) -> None:
    x.grad = None
    for p in (case.A, case.B):
        if p is not None:
            p.grad = None


def step(case: Case, x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    clear_grads(case, x)
    out = case.layer(x)
    out.backward(grad_out)
    return out


# -- saved-for-backward accounting -----------------------------------------------------------------
@dataclass
class Saved:
    shape: tuple[int, ...]
    dtype: torch.dtype
    ptr: int
    nbytes: int  # of the whole storage
    kind: str = ""  # "x", "param" or "activation"


@dataclass
class SavedReport:
    items: list[Saved] = field(default_factory=list)  # one per saved tensor, in save order
    unique: list[Saved] = field(default_factory=list)  # one per storage

    def bytes(self, *, exclude: tuple[str, ...] = ()) -> int:
        return sum(s.nbytes for s in self.unique if s.kind not in exclude)


def saved_for_backward(case: Case, x: torch.Tensor) -> SavedReport:
    """Every tensor saved for backward during one forward, deduped by storage."""
    report = SavedReport()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        report.items.append(Saved(tuple(t.shape), t.dtype, storage.data_ptr(), storage.nbytes()))
        return t

    clear_grads(case, x)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = case.layer(x)
    del out  # frees the graph; only the records are kept

    x_ptr = x.untyped_storage().data_ptr()
    param_ptrs = {p.untyped_storage().data_ptr() for p in case.layer.parameters()}
    seen: dict[int, Saved] = {}
    for s in report.items:
        s.kind = "x" if s.ptr == x_ptr else "param" if s.ptr in param_ptrs else "activation"
        seen.setdefault(s.ptr, s)
    report.unique = list(seen.values())
    return report


def describe(report: SavedReport) -> list[str]:
    lines = []
    counts: dict[int, int] = {}
    for s in report.items:
        counts[s.ptr] = counts.get(s.ptr, 0) + 1
    for s in report.unique:
        dtype = str(s.dtype).replace("torch.", "")
        lines.append(
            f"      {s.kind:<10} {str(list(s.shape)):<14} {dtype:<9} {s.nbytes / MB:9.3f} MB"
            + (f"  (saved {counts[s.ptr]}x)" if counts[s.ptr] > 1 else "")
        )
    return lines


# -- correctness -----------------------------------------------------------------------------------
def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def compare(cases: dict[str, Case], x: torch.Tensor, grad_out: torch.Tensor, dtype: torch.dtype) -> tuple[bool, str]:
    """Same output and gradients (x, A, B) from loralab (fused and unfused) and PEFT (meant for dropout 0)."""
    results = {}
    for name in ("loralab", "unfused", "peft"):
        case = cases[name]
        out = step(case, x, grad_out).detach()
        results[name] = {"out": out, "dx": x.grad.clone(), "dA": case.A.grad.clone(), "dB": case.B.grad.clone()}
        clear_grads(case, x)
    errs = {k: rel_err(results["loralab"][k], results["peft"][k]) for k in results["peft"]}
    errs_unfused = {k: rel_err(results["loralab"][k], results["unfused"][k]) for k in results["peft"]}
    ok = all(e <= TOLERANCE[dtype] for e in (*errs.values(), *errs_unfused.values()))
    detail = ", ".join(f"{k} {e:.1e}" for k, e in errs.items()) + "; fused vs unfused " + ", ".join(
        f"{k} {e:.1e}" for k, e in errs_unfused.items()
    )
    return ok, f"rel. err {detail} (tol {TOLERANCE[dtype]:.0e})"


def gradcheck_with_dropout(impl: str, dropout: float, bias: bool, variant: str = "lora") -> bool:
    """float64 gradcheck of the layer's backward, the dropout mask fixed by re-seeding every call (DoRA: of x only)."""
    cases = build_cases(d_in=12, d_out=10, r=3, dropout=dropout, dtype=torch.float64, bias=bias, seed=1, variant=variant)
    case = cases[impl]
    x = torch.randn(6, 12, dtype=torch.float64, requires_grad=True)
    A0 = case.A.detach().clone().requires_grad_(variant == "lora")
    B0 = case.B.detach().clone().requires_grad_(variant == "lora")

    def fn(x, *factors):
        with torch.random.fork_rng():
            torch.manual_seed(1234)
            return torch.func.functional_call(case.layer, _named_factors(case, *(factors or (A0, B0))), (x,))

    inputs = (x, A0, B0) if variant == "lora" else (x,)
    return torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, raise_exception=False)


def _named_factors(case: Case, A: torch.Tensor, B: torch.Tensor) -> dict[str, torch.Tensor]:
    names = {id(p): n for n, p in case.layer.named_parameters()}
    return {names[id(case.A)]: A, names[id(case.B)]: B}


# -- timing ----------------------------------------------------------------------------------------
def time_interleaved(cases: dict[str, Case], x: torch.Tensor, grad_out: torch.Tensor, warmup: int, reps: int) -> dict[str, list[float]]:
    """Per implementation, the wall time of each of ``reps`` rounds; each round runs every
    implementation once, the order rotated from round to round (A B C, B C A, C A B, …)."""
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            step(cases[name], x, grad_out)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(reps):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            t0 = time.perf_counter()
            step(cases[name], x, grad_out)
            times[name].append(time.perf_counter() - t0)
    for case in cases.values():
        clear_grads(case, x)
    return times


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=4096, help="rows of x (batch × sequence), default 4096")
    p.add_argument("--dim", type=int, default=2048, help="d_in = d_out, default 2048")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank r, default 16")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions per implementation, default 10")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (one run of each implementation per round), default 1")
    p.add_argument("--dropout", type=float, default=0.05, help="the non-zero dropout, default 0.05")
    p.add_argument("--dtypes", default="fp32,bf16", help="comma-separated, of fp32, bf16")
    p.add_argument("--bias", action="store_true", help="give the base layer a (frozen) bias")
    p.add_argument("--variant", choices=["lora", "dora"], default="lora", help="plain LoRA (default) or DoRA layers")
    p.add_argument("--base", action="store_true", help="also time the bare frozen base layer (the adapter's share; +50%% run time)")
    p.add_argument("--quick", action="store_true", help="smoke run: 512 tokens, dim 256, rank 8, 3 reps")
    p.add_argument("--verbose", action="store_true", help="list every tensor saved for backward")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.tokens, args.dim, args.rank, args.reps, args.warmup = 512, 256, 8, 3, 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    print(
        f"{'DoRA' if args.variant == 'dora' else 'LoRA'} linear forward+backward: tokens={args.tokens} d_in=d_out={args.dim} r={args.rank} "
        f"bias={args.bias} reps={args.reps} (warm-up {args.warmup}) threads={torch.get_num_threads()} "
        f"torch {torch.__version__}"
    )
    print("saved MB: storages saved for backward during one forward, deduped; 'excl. x' leaves out the input x,")
    print("'act.' also the parameters W, A, B (kept by the module anyway): the layer's own activation memory.\n")

    rows = []  # (dtype, dropout, impl, median_s, spread_s, adapter_s, saved_total, saved_excl_x, saved_act)
    checks: list[tuple[str, bool, str]] = []
    verbose_lines: list[str] = []
    for dname in dtypes:
        dtype = DTYPES[dname]
        for dropout in (0.0, args.dropout):
            cases = build_cases(args.dim, args.dim, args.rank, dropout, dtype, args.bias, args.seed, args.variant)
            gen = torch.Generator().manual_seed(args.seed + 1)
            x = torch.randn(args.tokens, args.dim, generator=gen).to(dtype).requires_grad_(True)
            grad_out = torch.randn(args.tokens, args.dim, generator=gen).to(dtype)

            if dropout == 0:
                ok, detail = compare(cases, x, grad_out, dtype)
                checks.append((f"{dname} dropout 0: loralab == PEFT == loralab unfused (out, dx, dA, dB)", ok, detail))
            elif dname == dtypes[0]:
                for impl in ("loralab", "unfused", "peft"):
                    ok = gradcheck_with_dropout(impl, dropout, args.bias, args.variant)
                    of = "" if args.variant == "lora" else ", of x"
                    checks.append((f"dropout {dropout:g}: {impl} backward matches its forward (fp64 gradcheck{of}, fixed mask)", ok, ""))

            reports = {impl: saved_for_backward(cases[impl], x) for impl in cases}
            timed = {k: c for k, c in cases.items() if k != "base" or args.base}
            times = time_interleaved(timed, x, grad_out, args.warmup, args.reps)
            for impl in ("loralab", "unfused", "peft", "base"):
                rep = reports[impl]
                t = times.get(impl)
                diffs = [a - b for a, b in zip(t, times["base"])] if t and "base" in times and impl != "base" else None
                paired = [a / b for a, b in zip(t, times["peft"])] if impl in ("loralab", "unfused") else None
                rows.append(
                    dict(
                        dtype=dname,
                        dropout=dropout,
                        impl=impl,
                        median=statistics.median(t) if t else None,
                        spread=iqr(t) if t else None,
                        adapter=statistics.median(diffs) if diffs else None,
                        paired=statistics.median(paired) if paired else None,
                        total=rep.bytes(),
                        excl_x=rep.bytes(exclude=("x",)),
                        act=rep.bytes(exclude=("x", "param")),
                        report=rep,
                    )
                )
                if args.verbose:
                    verbose_lines.append(f"  {dname} dropout {dropout:g} {impl}: {len(rep.items)} saved tensors, {len(rep.unique)} storages")
                    verbose_lines.extend(describe(rep))
            del cases, x, grad_out

    # -- the table
    header = (
        f"{'dtype':<5} {'dropout':>7} {'impl':<8} {'median ms':>10} {'IQR ms':>7} {'adapter ms':>10} {'ratio':>6} {'paired':>6}"
        f" {'saved MB excl. x':>17} {'ratio':>6} {'total MB':>9} {'act. MB':>8}"
    )
    print(header)
    print("-" * len(header))
    by_key = {(r["dtype"], r["dropout"], r["impl"]): r for r in rows}
    for r in rows:
        ref = by_key[(r["dtype"], r["dropout"], "peft")]
        show_ratio = r["impl"] in ("loralab", "unfused")
        t_ratio = f"{r['median'] / ref['median']:6.3f}" if show_ratio else ""
        paired = f"{r['paired']:6.3f}" if show_ratio else ""
        b_ratio = f"{r['excl_x'] / ref['excl_x']:6.3f}" if show_ratio and ref["excl_x"] else ""
        adapter = f"{r['adapter'] * 1e3:10.1f}" if r["adapter"] is not None else f"{'(ref.)' if r['impl'] == 'base' and r['median'] else '-':>10}"
        median = f"{r['median'] * 1e3:10.1f} {r['spread'] * 1e3:7.1f}" if r["median"] is not None else f"{'-':>10} {'-':>7}"
        print(
            f"{r['dtype']:<5} {r['dropout']:>7g} {r['impl']:<8} {median} {adapter}"
            f" {t_ratio:>6} {paired:>6} {r['excl_x'] / MB:17.2f} {b_ratio:>6} {r['total'] / MB:9.2f} {r['act'] / MB:8.2f}"
        )
    print("ratio = loralab / PEFT (of the medians; 'paired': median over rounds of loralab / PEFT in the same round).")
    print("unfused = loralab's LoraLinear with its fused forward/backward switched off (fused = False): the separate path.")
    print("adapter ms (with --base) = median over rounds of (impl − bare frozen base layer) in the same round.")
    print("base = the frozen nn.Linear alone, for reference (timed only with --base).")
    base_saves_x = any(s.kind == "x" for r in rows if r["impl"] == "base" for s in r["report"].unique)
    print(
        "the frozen base layer alone " + ("saves x too." if base_saves_x else "saves only W, not x: x is kept by the adapter path "
        "(PEFT with dropout > 0 keeps no x at all, only the dropped copy and the mask; see 'total MB').")
    )
    if verbose_lines:
        print("\nsaved for backward (one line per storage; kind, shape, dtype, storage size):")
        print("\n".join(verbose_lines))

    # -- correctness
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))

    # -- targets
    pairs = [(by_key[(d, p, "loralab")], by_key[(d, p, "peft")]) for d in dtypes for p in (0.0, args.dropout)]

    def verdict(ok: bool) -> str:
        return "met    " if ok else "NOT MET"

    def where(failing) -> str:
        return "" if not failing else "  (fails: " + "; ".join(failing) + ")"

    print()
    slow = [f"{a['dtype']} p={a['dropout']:g} {a['median'] / b['median']:.3f}x" for a, b in pairs if a["median"] > b["median"]]
    noisy = [
        f"{a['dtype']} p={a['dropout']:g}"
        for a, b in pairs
        if a["median"] > b["median"] and a["median"] - b["median"] <= max(a["spread"], b["spread"])
    ]
    print(f"{verdict(not slow)} time ≤ PEFT's (median fwd+bwd), every case{where(slow)}")
    paired_slow = [f"{a['dtype']} p={a['dropout']:g} {a['paired']:.3f}x" for a, _ in pairs if a["paired"] > 1]
    print(f"        paired per-round ratio > 1 for: {', '.join(paired_slow) if paired_slow else 'none'}")
    if noisy:
        print(f"        note: within the run's noise (difference ≤ IQR) for: {', '.join(noisy)}")
    more = [f"{a['dtype']} p={a['dropout']:g} {a['excl_x'] / MB:.2f} > {b['excl_x'] / MB:.2f} MB" for a, b in pairs if a["excl_x"] > b["excl_x"]]
    print(f"{verdict(not more)} saved bytes (excl. x) ≤ PEFT's, every case{where(more)}")
    not_less = [
        f"{a['dtype']} p={a['dropout']:g} {a['excl_x'] / MB:.2f} ≥ {b['excl_x'] / MB:.2f} MB"
        for a, b in pairs
        if a["dropout"] > 0 and a["excl_x"] >= b["excl_x"]
    ]
    print(f"{verdict(not not_less)} saved bytes (excl. x) < PEFT's with dropout > 0{where(not_less)}")
    extra = []
    for a, _ in pairs:
        if a["dropout"] != 0 or args.variant != "lora":
            continue
        acts = [s for s in a["report"].unique if s.kind == "activation"]
        has_x = any(s.kind == "x" for s in a["report"].unique)
        only_h = len(acts) == 1 and acts[0].shape == (args.tokens, args.rank)
        if not (has_x and only_h):
            extra.append(f"{a['dtype']}: saves x={has_x}, others " + ", ".join(f"{list(s.shape)} {s.dtype}" for s in acts))
    if args.variant == "lora":
        print(f"{verdict(not extra)} dropout 0: loralab saves only x and x·Aᵀ (besides W, A, B){where(extra)}")
    failed = [name for name, ok, _ in checks if not ok]
    print(f"{verdict(not failed)} correctness checks{where(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
