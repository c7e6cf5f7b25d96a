#!/usr/bin/env python
"""One LoRA training step on the bundled SmolLM2: loralab's trainer step against Hugging Face PEFT's.

Both sides get the same model (SmolLM2-135M-Instruct, float32 weights), the same batch of `arith`
instruction examples (response-only labels), LoRA r = 16 / alpha 32 on all linear layers, dropout
0.05, AdamW on the adapter, and the same precision (``auto`` by default: bf16 autocast where the device
computes bf16 natively, fp32 otherwise). A step is forward,
backward and optimiser step:

* loralab: the supervised objective (``loralab.train.objectives.SupervisedObjective``) — the model's
  forward with its output head applied to the labelled positions only (instruction data labels ~30% of positions);
* PEFT: ``get_peft_model`` and the usual ``model(**batch).loss`` (logits at every position).

Under bf16, loralab holds the frozen base linears in bf16 (the trainer does so when training and
evaluation both run in bf16: autocast computes with exactly those values, so the forward is the same
bit for bit). ``loralab-no-lean`` is loralab with ``train.lean_activations: false`` (every activation
kept), to show what the lean activations save. Each measurement runs in its own process (peak resident memory, ``ru_maxrss``, only ever grows),
and the processes alternate loralab, PEFT, loralab, PEFT, ... so that machine noise hits both.
Printed: tokens/s (median over processes) and peak memory (median), with the ratio to PEFT, and
whether the targets (tokens/s ≥ 1.5× PEFT's, peak memory ≤ 0.6× PEFT's) are met. With ``--device cuda`` the
memory is ``torch.cuda.max_memory_allocated``.

Run:  .venv/bin/python benchmarks/train_step.py [--rounds 3] [--steps 4] [--batch 16] [--precision bf16|fp32]
"""

from __future__ import annotations

import argparse
import statistics

from alternating import measure, timed_steps

IMPLS = ("loralab", "peft", "loralab-no-lean")  # the last: train.lean_activations=false, for its effect


def batch_of_examples(tokenizer, size: int):
    from loralab.data import PaddingCollator, build_dataset
    from loralab.data.tasks import get_task

    task = get_task("arith", level=1)
    records = [task.to_record(p) for p in task.train(size, seed=0)]
    dataset = build_dataset(records, tokenizer, max_length=256)
    return PaddingCollator.for_tokenizer(tokenizer)(list(dataset))


def worker(impl: str, args: argparse.Namespace) -> dict:
    import torch

    from loralab.models import load_model
    from loralab.train.memory import peak_memory_mb

    torch.manual_seed(0)
    device = torch.device(args.device)
    model, tokenizer = load_model("smollm2-135m-instruct", device=args.device)
    batch = {k: v.to(device) for k, v in batch_of_examples(tokenizer, args.batch).items()}
    if impl.startswith("loralab"):
        from loralab import LoraConfig, add_adapter
        from loralab.lora.frozen_base import hold_frozen_base_in
        from loralab.models.lean_activations import enable_lean_activations
        from loralab.train.objectives import SupervisedObjective

        add_adapter(model, LoraConfig(r=16, alpha=32, dropout=0.05, target_modules="all-linear"))
        if impl == "loralab":
            enable_lean_activations(model)  # as the trainer does (train.lean_activations, on by default)
        if args.precision == "bf16":  # as the trainer does: the frozen linears autocast computes in bf16 anyway
            hold_frozen_base_in(model, torch.bfloat16)
        objective = SupervisedObjective()

        def loss_of(batch):
            out = objective(model, batch)
            return out.loss_sum / out.normaliser
    else:
        from peft import LoraConfig as PeftConfig
        from peft import get_peft_model

        model = get_peft_model(model, PeftConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))

        def loss_of(batch):
            return model(**batch).loss

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        with autocast:
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    losses, seconds = timed_steps(step, args.warmup, args.steps, device)
    tokens = int(batch["attention_mask"].sum()) * args.steps
    return {"impl": impl, "tokens_per_s": tokens / seconds, "peak_mb": peak_memory_mb(device), "first_loss": losses[0],
            "labelled_fraction": float((batch["labels"][:, 1:] != -100).float().mean())}  # fmt: skip


def main() -> None:
    measured = measure(__file__, __doc__, IMPLS, worker, rounds=3, steps=4, size=("--batch", 16, "examples per step"))
    if measured is None:
        return
    args, results, device_name = measured

    def median(impl: str, key: str) -> float:
        return statistics.median(r[key] for r in results[impl])

    same_loss = max(abs(results[impl][0]["first_loss"] - results["peft"][0]["first_loss"]) for impl in IMPLS)
    print(f"\nLoRA training step, SmolLM2-135M-Instruct, r=16 all-linear, {args.batch} arith examples per step "
          f"({100 * results['loralab'][0]['labelled_fraction']:.0f}% of positions labelled), {args.precision}, {args.device} "
          f"({device_name}), "
          f"{args.rounds} processes × {args.steps} steps each\n")  # fmt: skip
    print(f"{'':<16}{'tokens/s':>10}{'peak MiB':>10}")
    for impl in IMPLS:
        print(f"{impl:<16}{median(impl, 'tokens_per_s'):>10.0f}{median(impl, 'peak_mb'):>10.0f}")
    speed = median("loralab", "tokens_per_s") / median("peft", "tokens_per_s")
    memory = median("loralab", "peak_mb") / median("peft", "peak_mb")
    print(f"{'ratio':<16}{speed:>10.3f}{memory:>10.3f}   (loralab / PEFT)")
    print(f"\nfirst-step loss difference (same data, same init seed): {same_loss:.2e}")
    print(f"targets: tokens/s ≥ 1.5× PEFT's: {'met' if speed >= 1.5 else 'NOT met'}; "
          f"peak memory ≤ 0.6× PEFT's: {'met' if memory <= 0.6 else 'NOT met'}")


if __name__ == "__main__":
    main()
