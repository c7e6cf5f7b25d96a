#!/usr/bin/env python
"""LoRA against QLoRA training steps: the same model, adapters and batch, the base in bf16 or in 4-bit NF4.

For each model (the bundled SmolLM2-135M; with ``--llama1b`` also a random 1.1B Llama, TinyLlama's
shape) and each method, a fresh subprocess (so that peak memory is its own) loads the model in
bf16, for QLoRA swaps its linear layers to NF4 (``loralab.quantize_base``, bf16 compute), adds
LoRA r=16 (alpha 32) on every linear layer but the head with float32 factors, and runs
forward + backward + AdamW steps on the adapter parameters under bf16 autocast, on one fixed
random batch (default 4 × 256 tokens). Printed per run:

* base weight memory (``loralab.quant.weight_memory``): all base weights, and the linear layers
  that QLoRA quantizes (their bf16 size for LoRA): target ≤ 0.30× bf16;
* the median step time and tokens/s over the timed steps (after warm-up);
* memory: CPU: the RSS once the model is ready (after ``malloc_trim``), and the peak RSS during the steps (VmHWM reset
  through /proc/self/clear_refs before the first step) and over the whole process (ru_maxrss);
  CUDA: torch.cuda memory allocated once ready and its peak during the steps;
* the loss of the first and last step (the same batch each time, so it falls).

Run:  .venv/bin/python benchmarks/qlora.py [--quick] [--device cuda] [--llama1b] [--threads N]
          [--batch B --seq T --rank R --warmup W --steps S]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

MIB = 2**20
METHODS = ("lora", "qlora")


# -- the worker: one model, one method, in its own process ---------------------------------------
def build_model(name: str, device: str):
    if name == "smollm2":
        from loralab import load_model

        return load_model("smollm2-135m-instruct", dtype="bfloat16", device=device)[0]
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(  # TinyLlama-1.1B's shape, random weights
        vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
        num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def release_freed_memory() -> None:
    """Return freed heap memory to the system (glibc's malloc_trim), so that RSS shows what is in use."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as refs:  # resets VmHWM to the current RSS
            refs.write("5")


def worker(args: argparse.Namespace) -> dict:
    import loralab
    from loralab.quant import QuantConfig, quantize_base, weight_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(args.model, args.device)
    if args.method == "qlora":
        quantize_base(model, QuantConfig(compute_dtype="bfloat16"))
    loralab.add_adapter(model, loralab.LoraConfig(r=args.rank, alpha=2 * args.rank, target_modules="all-linear"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    for param in trainable:  # float32 factors for both methods (LoRA's would follow its bf16 base)
        param.data = param.data.float()
    memory = weight_memory(model)
    model.train()
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), generator=gen).to(args.device)
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    sync()
    release_freed_memory()  # what quantization freed (the bf16 weights) goes back to the system
    ready = torch.cuda.memory_allocated() if args.device == "cuda" else rss_kib("VmRSS") * 1024
    reset_peak(args.device)
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(args.device, dtype=torch.bfloat16):
            loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    if args.device == "cuda":
        peak, lifetime = torch.cuda.max_memory_allocated(), None
    else:
        peak, lifetime = rss_kib("VmHWM") * 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step = statistics.median(times)
    return dict(
        model=args.model, method=args.method, step_s=step, tokens_per_s=args.batch * args.seq / step, steps=times,
        loss_first=losses[0], loss_last=losses[-1], ready_bytes=ready, peak_bytes=peak, lifetime_bytes=lifetime,
        base_bytes=memory.total_bytes, nf4_params=memory.quantized_params, nf4_bytes=memory.quantized_bytes,
        dense_params=memory.dense_params, trainable=sum(p.numel() for p in trainable),
    )  # fmt: skip


# -- the parent: one subprocess per run, then the table ------------------------------------------
def run(args: argparse.Namespace, model: str, method: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--method", method]
    for flag in ("device", "batch", "seq", "rank", "warmup", "steps", "seed", "threads"):
        cmd += [f"--{flag}", str(getattr(args, flag))]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{model}/{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: list[dict], device: str) -> bool:
    mem = "CUDA allocated" if device == "cuda" else "RSS"
    header = (
        f"{'model':<8} {'method':<6} {'linear MiB':>10} {'×bf16':>6} {'base MiB':>9} {'×LoRA':>6} {'step s':>7} {'tokens/s':>9} "
        f"{mem + ' ready MiB':>{len(mem) + 10}} {'peak MiB':>9} {'lifetime MiB':>12} {'loss first→last':>16}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in results:
        qlora = next(x for x in results if x["model"] == r["model"] and x["method"] == "qlora")
        lora = next(x for x in results if x["model"] == r["model"] and x["method"] == "lora")
        linear_params = qlora["nf4_params"]
        linear_bytes = r["nf4_bytes"] if r["method"] == "qlora" else 2 * linear_params
        ratio = linear_bytes / (2 * linear_params)
        ok &= r["method"] == "lora" or ratio <= 0.30
        lifetime = f"{r['lifetime_bytes'] / MIB:12.0f}" if r["lifetime_bytes"] else f"{'-':>12}"
        print(
            f"{r['model']:<8} {r['method']:<6} {linear_bytes / MIB:10.1f} {ratio:6.3f} {r['base_bytes'] / MIB:9.1f} "
            f"{r['base_bytes'] / lora['base_bytes']:6.3f} {r['step_s']:7.2f} {r['tokens_per_s']:9.0f} "
            f"{r['ready_bytes'] / MIB:{len(mem) + 10}.0f} {r['peak_bytes'] / MIB:9.0f} {lifetime} "
            f"{r['loss_first']:7.3f}→{r['loss_last']:.3f}"
        )
    print(
        "linear MiB: the layers QLoRA quantizes (every linear but the head), in bf16 for LoRA, NF4 codes + scales for QLoRA;\n"
        "base MiB: every base weight (embeddings, norms, head included; adapters excluded).\n"
        f"peak MiB: during the timed and warm-up steps{' (VmHWM reset before them)' if device != 'cuda' else ''}; "
        "lifetime MiB: the whole process (loading included)."
    )
    for model in dict.fromkeys(r["model"] for r in results):
        lora, qlora = (next(x for x in results if x["model"] == model and x["method"] == m) for m in METHODS)
        print(
            f"{model}: QLoRA/LoRA tokens/s {qlora['tokens_per_s'] / lora['tokens_per_s']:.3f}, "
            f"peak {qlora['peak_bytes'] / lora['peak_bytes']:.3f}, trainable params {qlora['trainable'] / 1e6:.2f}M"
        )
    print(f"{'met    ' if ok else 'NOT MET'} NF4 linear weights ≤ 0.30× their bf16 size")
    return ok


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first, default 1")
    p.add_argument("--steps", type=int, default=3, help="timed steps, default 3")
    p.add_argument("--llama1b", action="store_true", help="also a random 1.1B Llama (about 2.2 GB in bf16; slow on CPU)")
    p.add_argument("--quick", action="store_true", help="smoke run: batch 2 × 64 tokens, 1 warm-up and 2 timed steps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's); 1 on a busy shared machine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default="smollm2", choices=["smollm2", "llama1b"], help=argparse.SUPPRESS)
    p.add_argument("--method", default="lora", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.seq, args.warmup, args.steps = 2, 64, 1, 2
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    models = ["smollm2"] + (["llama1b"] if args.llama1b else [])
    print(
        f"LoRA vs QLoRA training steps: batch {args.batch}×{args.seq} tokens, r={args.rank} all-linear, bf16 autocast, "
        f"AdamW on fp32 factors, {args.warmup} warm-up + {args.steps} timed steps, device {args.device}, "
        f"threads {args.threads or torch.get_num_threads()}, torch {torch.__version__}\n"
    )
    results = [run(args, model, method) for model in models for method in METHODS]
    return 0 if print_table(results, args.device) else 1


if __name__ == "__main__":
    raise SystemExit(main())
