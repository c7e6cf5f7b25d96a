#!/usr/bin/env python
"""One DPO training step on the bundled SmolLM2, with the reference model obtained three ways.

Same model (SmolLM2-135M-Instruct, float32 weights), LoRA r = 16 / alpha 32 on all linear layers,
AdamW, the same batch of ``--pairs`` ``arith-preference`` pairs (chosen and rejected padded
together: 2P rows, loss on the answers only), β = 0.1. A step is the policy's forward, the
reference's log-probabilities, backward and the optimiser step. The reference:

* ``adapter-off`` — the same model with its adapter switched off (``loralab.disabled``): a second
  forward, no second model (loralab's default for LoRA, rsLoRA, DoRA, QLoRA);
* ``precomputed`` — log-probabilities computed once before training (``dpo.precompute_reference``):
  one forward per step, one model;
* ``frozen-copy`` — a second, frozen copy of the base model (what full fine-tuning needs).

Each measurement runs in its own process (peak resident memory only grows) and the processes
alternate, so machine noise hits all. Printed: tokens/s and peak memory (medians), with the ratio to
``adapter-off`` measured in the same run, and the first-step loss (log 2 = 0.6931 for all, since the
adapter starts at zero).

Run:  .venv/bin/python benchmarks/dpo_step.py [--rounds 2] [--steps 3] [--pairs 8] [--precision auto|bf16|fp32] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics

from alternating import measure, timed_steps

REFERENCES = ("adapter-off", "precomputed", "frozen-copy")


def pair_batch(tokenizer, pairs: int):
    from loralab.data import build_preference_dataset
    from loralab.data.tasks import get_task
    from loralab.train.objectives import PreferenceObjective

    task = get_task("arith-preference", level=1)
    records = [task.to_record(p) for p in task.train(pairs, seed=0)]
    dataset = build_preference_dataset(records, tokenizer, max_length=256)
    return PreferenceObjective().collator(tokenizer)(list(dataset))


def worker(reference: str, args: argparse.Namespace) -> dict:
    import torch

    from loralab import LoraConfig, add_adapter
    from loralab.models import load_model
    from loralab.train.memory import peak_memory_mb
    from loralab.train.objectives.dpo import AdapterOff, FrozenCopy, Precomputed, PreferenceObjective

    torch.manual_seed(0)
    device = torch.device(args.device)
    model, tokenizer = load_model("smollm2-135m-instruct", device=args.device)
    batch = {k: v.to(device) for k, v in pair_batch(tokenizer, args.pairs).items()}
    add_adapter(model, LoraConfig(r=16, alpha=32, dropout=0.05, target_modules="all-linear"))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    if reference == "adapter-off":
        policy = AdapterOff()
    elif reference == "frozen-copy":
        frozen, _ = load_model("smollm2-135m-instruct", device=args.device)
        policy = FrozenCopy(frozen.requires_grad_(False).eval())
    else:
        with autocast:
            batch["reference_log_probs"] = AdapterOff().log_probs(model, batch)
        policy = Precomputed()
    objective = PreferenceObjective(reference=policy)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        with autocast:
            out = objective(model, batch)
        (out.loss_sum / out.normaliser).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out.loss_sum.detach()) / out.normaliser

    losses, seconds = timed_steps(step, args.warmup, args.steps, device)
    tokens = int(batch["attention_mask"].sum()) * args.steps
    return {"reference": reference, "tokens_per_s": tokens / seconds, "peak_mb": peak_memory_mb(device),
            "first_loss": losses[0], "rows": int(batch["input_ids"].shape[0]), "length": int(batch["input_ids"].shape[1])}  # fmt: skip


def main() -> None:
    measured = measure(__file__, __doc__, REFERENCES, worker, rounds=2, steps=3, size=("--pairs", 8, "preference pairs per step (2× rows)"))
    if measured is None:
        return
    args, results, device_name = measured

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    first = results["adapter-off"][0]
    print(f"\nDPO step, SmolLM2-135M-Instruct, LoRA r=16 all-linear, {args.pairs} arith-preference pairs "
          f"({first['rows']} rows × {first['length']} tokens), {args.precision}, {args.device} ({device_name}), "
          f"{args.rounds} processes × {args.steps} steps each\n")  # fmt: skip
    print(f"{'reference':<13}{'tokens/s':>10}{'peak MiB':>10}{'speed ×':>9}{'memory ×':>10}{'first loss':>12}")
    for kind in REFERENCES:
        speed = median(kind, "tokens_per_s") / median("adapter-off", "tokens_per_s")
        memory = median(kind, "peak_mb") / median("adapter-off", "peak_mb")
        print(f"{kind:<13}{median(kind, 'tokens_per_s'):>10.0f}{median(kind, 'peak_mb'):>10.0f}{speed:>9.2f}"
              f"{memory:>10.2f}{results[kind][0]['first_loss']:>12.4f}")  # fmt: skip
    print("(× columns: relative to adapter-off in this run; first loss log 2 = 0.6931)")


if __name__ == "__main__":
    main()
