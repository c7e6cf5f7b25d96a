#!/usr/bin/env python
"""One training step, loralab's trainer step against Hugging Face PEFT's (LoRA, QLoRA) or plain transformers' (full fine-tuning).

Both sides get the same model, the same batch, the same precision (``auto`` by default: bf16
autocast where the device computes bf16 natively, fp32 otherwise) and the same weights dtype:

* ``--model smollm2`` (default): the bundled SmolLM2-135M-Instruct; ``--model llama-1b``: a transformers
  ``LlamaForCausalLM`` of Llama-3.2-1B's shape (hidden 2048, 16 layers, 32 heads / 8 KV heads, MLP 8192,
  vocabulary 128256, tied embeddings, RoPE θ 500000) with random weights (seed 0), built on the device.
  Attention: transformers' SDPA. ``--layers N`` keeps N decoder layers (smoke runs);
* ``--data arith`` (default for smollm2): ``--batch`` ``arith`` instruction examples, response-only labels;
  ``--data synthetic`` (default for llama-1b): ``--batch`` rows of ``--seq-len`` random ids (seed 0), no
  padding, labels on the second half of each row;
* ``--method lora`` (default): LoRA r = 16 / alpha 32 on all linear layers (not the head), dropout 0.05,
  float32 factors, AdamW on the adapter; ``qlora``: the same on a 4-bit NF4 base (loralab's
  ``quantize_base``; PEFT: bitsandbytes through transformers' ``BitsAndBytesConfig``, then
  ``prepare_model_for_kbit_training``, which upcasts the unquantized weights to float32, without gradient
  checkpointing — needs bitsandbytes, on a CPU ≥ 0.46, else skipped); ``dora``: LoRA's setup with DoRA's magnitude
  (``use_dora`` on both sides); ``full``: every weight trained with AdamW;
* ``--weights fp32`` (default) or ``bf16``: the dtype the model is built in.

A step is forward, backward and optimiser step:

* loralab: the supervised objective (``loralab.train.objectives.SupervisedObjective``) — the model's
  forward with its output head applied to the labelled positions only (instruction data labels ~30% of positions);
* PEFT: ``get_peft_model`` and the usual ``model(**batch).loss`` (logits at every position); for full
  fine-tuning the reference is plain transformers, ``model(**batch).loss``.

Under bf16, loralab holds the frozen base linears in bf16 (the trainer does so when training and
evaluation both run in bf16: autocast computes with exactly those values, so the forward is the same
bit for bit). ``loralab-no-lean`` (LoRA only) is loralab with ``train.lean_activations: false`` (every activation
kept), to show what the lean activations save; ``loralab-unfused`` (LoRA and DoRA) is loralab with every LoRA linear's
fused forward/backward switched off (``LoraLinear.fused = False``: base layer and adapter path as separate autograd nodes). Each measurement runs in its own process (peak resident memory, ``ru_maxrss``, only ever grows),
and the processes alternate loralab, PEFT, loralab, PEFT, ... so that machine noise hits both.
Printed: tokens/s (median over processes), peak memory (median) and MFU, with the ratio to the
reference, and whether the targets (tokens/s ≥ 1.5× PEFT's, peak memory ≤ 0.6× PEFT's) are met. With
``--device cuda`` the memory is ``torch.cuda.max_memory_allocated``.

MFU = tokens/s × FLOPs per token / the GPU's dense bf16 peak, with FLOPs per token 4N for LoRA, DoRA and
QLoRA (forward 2N, backward through the activations 2N; the adapters' own FLOPs ignored, and DoRA's second
product with W under dropout) and 6N for
full fine-tuning (the weight gradients too), N the weights of every linear layer (the output head
once, tied or not; the embedding lookup is no matmul). Attention scores are not counted, nor that
loralab runs the head at labelled positions only: the FLOPs are the model's, not what each side computes.

Run:  .venv/bin/python benchmarks/train_step.py [--rounds 3] [--steps 4] [--batch 16] [--precision bf16|fp32]
          [--device cuda] [--model smollm2|llama-1b] [--data arith|synthetic] [--seq-len 2048]
          [--method lora|qlora|dora|full] [--weights fp32|bf16] [--layers N]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics

from alternating import measure, timed_steps

METHODS = {  # the kinds each method compares: loralab, then its reference, then loralab's variants
    # loralab-no-lean: train.lean_activations=false; loralab-unfused: LoRA / DoRA linears without their fused function
    "lora": ("loralab", "peft", "loralab-no-lean", "loralab-unfused"),
    "qlora": ("loralab", "peft"),
    "dora": ("loralab", "peft", "loralab-unfused"),
    "full": ("loralab", "transformers"),
}
TITLES = {"lora": "LoRA training step, r=16 all-linear", "qlora": "QLoRA training step (NF4 base), r=16 all-linear",
          "dora": "DoRA training step, r=16 all-linear",
          "full": "full fine-tuning step (every weight, AdamW)"}  # fmt: skip
LLAMA_1B = dict(  # Llama-3.2-1B's config.json (its rope scaling left out: it changes no FLOP)
    vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
    num_key_value_heads=8, tie_word_embeddings=True, rope_theta=500000.0, max_position_embeddings=131072,
    rms_norm_eps=1e-5,
)  # fmt: skip
# Vendor dense bf16 tensor-core peak (no sparsity), FLOP/s, by a word of torch.cuda.get_device_name(); first match wins.
BF16_PEAK = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10", 125e12))
OPTIONS = {
    "--model": dict(choices=["smollm2", "llama-1b"], default="smollm2",
                    help="smollm2: the bundled SmolLM2-135M-Instruct; llama-1b: random weights of Llama-3.2-1B's shape"),
    "--layers": dict(type=int, help="keep this many decoder layers (CPU smoke runs)"),
    "--data": dict(choices=["arith", "synthetic"], help="default: arith for smollm2, synthetic for llama-1b"),
    "--seq-len": dict(type=int, default=2048, help="tokens per row of --data synthetic"),
    "--method": dict(choices=list(METHODS), default="lora", help="qlora's PEFT side needs bitsandbytes (≥ 0.46 on a CPU)"),
    "--weights": dict(choices=["fp32", "bf16"], default="fp32", help="dtype the model is built in, both sides"),
}  # fmt: skip


def data_of(args: argparse.Namespace) -> str:
    return args.data or ("synthetic" if args.model == "llama-1b" else "arith")


def peft_unavailable(args: argparse.Namespace) -> str | None:
    """Why PEFT's side cannot run here, or None: its QLoRA needs bitsandbytes' 4-bit layers (on a CPU: bitsandbytes ≥ 0.46,
    whose CPU backend has them)."""
    if args.method != "qlora":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    if args.device.startswith("cuda"):
        return None
    from importlib.metadata import version

    major, minor = (int(part) for part in version("bitsandbytes").split(".")[:2])
    return None if (major, minor) >= (0, 46) else "bitsandbytes < 0.46 has no CPU 4-bit layers: use --device cuda"


def kinds_of(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(kind for kind in METHODS[args.method] if kind != "peft" or not peft_unavailable(args))


def arith_batch(tokenizer, size: int):
    from loralab.data import PaddingCollator, build_dataset
    from loralab.data.tasks import get_task

    task = get_task("arith", level=1)
    records = [task.to_record(p) for p in task.train(size, seed=0)]
    dataset = build_dataset(records, tokenizer, max_length=256)
    return PaddingCollator.for_tokenizer(tokenizer)(list(dataset))


def synthetic_batch(rows: int, length: int, vocab_size: int):
    """rows × length random ids (seed 0), no padding; labels: the ids on each row's second half, -100 on its first."""
    import torch

    ids = torch.randint(0, vocab_size, (rows, length), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, : length // 2] = -100
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def build_model(args: argparse.Namespace, dtype):
    """The model of ``--model`` on the device in ``dtype`` (weights seeded), with ``--layers`` decoder layers if given."""
    import torch

    if args.model == "smollm2":
        from loralab.models import load_model

        model = load_model("smollm2-135m-instruct", dtype=dtype, device=args.device)[0]
        if args.layers:
            model.model.layers = model.model.layers[: args.layers]
            model.config.num_hidden_layers = args.layers
        return model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**LLAMA_1B, "num_hidden_layers": args.layers or LLAMA_1B["num_hidden_layers"]})
    torch.manual_seed(0)
    with torch.device(args.device):
        return LlamaForCausalLM._from_config(config, dtype=dtype, attn_implementation="sdpa")


def matmul_parameters(model) -> int:
    """N: the weights of every linear layer, the output head included once (tied or not); embeddings are lookups."""
    import torch

    return sum({id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)}.values())


def loralab_loss(model, impl: str, args: argparse.Namespace):
    """Prepare ``model`` in place as loralab's trainer does for ``--method``; the step's loss as a function of the batch."""
    import torch

    from loralab import LoraConfig, add_adapter
    from loralab.lora.frozen_base import hold_frozen_base_in
    from loralab.models.lean_activations import enable_lean_activations
    from loralab.train.objectives import SupervisedObjective

    if args.method == "qlora":
        from loralab.quant import QuantConfig, quantize_base

        quantize_base(model, QuantConfig(compute_dtype="bfloat16" if args.precision == "bf16" else "float32"))
    if args.method == "full":
        model.requires_grad_(True)
    else:
        add_adapter(model, LoraConfig(r=16, alpha=32, dropout=0.05, target_modules="all-linear", use_dora=args.method == "dora"))
        for param in (p for p in model.parameters() if p.requires_grad):  # float32 factors, as PEFT makes them
            param.data = param.data.float()
    if impl in ("loralab", "loralab-unfused"):
        enable_lean_activations(model)  # as the trainer does (train.lean_activations, on by default)
    if impl == "loralab-unfused":
        from loralab.lora.layers import LoraLinear

        for layer in model.modules():
            if isinstance(layer, LoraLinear):
                layer.fused = False
    if args.precision == "bf16":  # as the trainer does: the frozen linears autocast computes in bf16 anyway
        hold_frozen_base_in(model, torch.bfloat16)
    objective = SupervisedObjective()

    def loss_of(batch):
        out = objective(model, batch)
        return out.loss_sum / out.normaliser

    return loss_of


def in_nf4(model, args: argparse.Namespace):
    """``model`` saved and loaded again through transformers' bitsandbytes 4-bit NF4 (double-quantized, as QLoRA)."""
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute = torch.bfloat16 if args.precision == "bf16" else torch.float32
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=compute)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        return AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=model.dtype,
                                                    device_map={"": args.device}, attn_implementation="sdpa")  # fmt: skip


def worker(impl: str, args: argparse.Namespace) -> dict:
    import torch

    from loralab.train.memory import peak_memory_mb

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args, {"fp32": torch.float32, "bf16": torch.bfloat16}[args.weights])
    matmuls, attention = matmul_parameters(model), model.config._attn_implementation
    if data_of(args) == "arith":
        from loralab.models import load_tokenizer

        batch = arith_batch(load_tokenizer("smollm2-135m-instruct"), args.batch)
    else:
        batch = synthetic_batch(args.batch, args.seq_len, model.config.vocab_size)
    batch = {k: v.to(device) for k, v in batch.items()}
    if impl.startswith("loralab"):
        loss_of = loralab_loss(model, impl, args)
    else:
        if impl == "peft":
            from peft import LoraConfig as PeftConfig
            from peft import get_peft_model, prepare_model_for_kbit_training

            if args.method == "qlora":
                model = prepare_model_for_kbit_training(in_nf4(model, args), use_gradient_checkpointing=False)
            model = get_peft_model(model, PeftConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                     use_dora=args.method == "dora"))
        else:  # transformers, full fine-tuning
            model.requires_grad_(True)

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
            "labelled_fraction": float((batch["labels"][:, 1:] != -100).float().mean()),
            "rows": batch["input_ids"].shape[0], "length": batch["input_ids"].shape[1], "matmul_params": matmuls,
            "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size, "attention": attention}  # fmt: skip


def bf16_peak(device: str, device_name: str) -> tuple[str, float] | None:
    """(the GPU's key in BF16_PEAK, its dense bf16 FLOP/s), or None off CUDA or for a GPU not in the table."""
    if not device.startswith("cuda"):
        return None
    return next(((key, flops) for key, flops in BF16_PEAK if re.search(rf"\b{key}\b", device_name)), None)


def main() -> None:
    measured = measure(__file__, __doc__, kinds_of, worker, rounds=3, steps=4, size=("--batch", 16, "examples (rows) per step"),
                       options=OPTIONS)  # fmt: skip
    if measured is None:
        return
    args, results, device_name = measured
    reference = METHODS[args.method][1]
    kinds = tuple(results)

    def median(impl: str, key: str) -> float:
        return statistics.median(r[key] for r in results[impl])

    first = results["loralab"][0]
    model = "SmolLM2-135M-Instruct" if args.model == "smollm2" else "Llama-3.2-1B's shape with random weights"
    rows, labelled = f"{first['rows']} × {first['length']} tokens", f"{100 * first['labelled_fraction']:.0f}% of positions labelled"
    data = (f"{args.batch} arith examples per step ({rows}, padded; {labelled})" if data_of(args) == "arith"
            else f"synthetic {rows} per step (random ids, seed 0; {labelled})")  # fmt: skip
    print(f"\n{TITLES[args.method]}, {model} (layers {first['layers']}, hidden {first['hidden']}, {first['attention']} attention), "
          f"{data}, precision {args.precision}, weights {args.weights}, {args.device} ({device_name}), "
          f"{args.rounds} processes × {args.steps} steps each\n")  # fmt: skip
    per_token = (6 if args.method == "full" else 4) * first["matmul_params"]
    bf16 = args.precision == "bf16" or args.weights == "bf16"  # bf16 weights compute in bf16, autocast or not
    peak = bf16_peak(args.device, device_name) if bf16 else None
    print(f"{'':<16}{'tokens/s':>10}{'peak MiB':>10}{'TFLOP/s':>9}{'MFU':>7}")
    for impl in kinds:
        achieved = median(impl, "tokens_per_s") * per_token
        mfu = f"{100 * achieved / peak[1]:.1f}%" if peak else "n/a"
        print(f"{impl:<16}{median(impl, 'tokens_per_s'):>10.0f}{median(impl, 'peak_mb'):>10.0f}{achieved / 1e12:>9.2f}{mfu:>7}")
    name, whose = ("PEFT", "PEFT's") if reference == "peft" else ("transformers", "transformers'")
    if reference in results:
        speed = median("loralab", "tokens_per_s") / median(reference, "tokens_per_s")
        memory = median("loralab", "peak_mb") / median(reference, "peak_mb")
        print(f"{'ratio':<16}{speed:>10.3f}{memory:>10.3f}   (loralab / {name})")
    flops = (f"{6 if args.method == 'full' else 4}N = {per_token:.3g} FLOPs/token, N = {first['matmul_params']:.4g} weights in "
             "matmuls (every linear layer, the head once; attention scores not counted)")  # fmt: skip
    if peak:
        print(f"\nMFU: of {peak[1] / 1e12:.0f} TFLOP/s ({peak[0]}: vendor dense bf16 tensor-core peak), at {flops}")
    else:
        why = f"peak unknown for {args.device} ({device_name})" if bf16 else "fp32 compute; the peaks are bf16"
        print(f"\nMFU: n/a ({why}); TFLOP/s at {flops}")
    if reference not in results:
        print(f"{name} skipped: {peft_unavailable(args)}")
        return
    same_loss = max(abs(results[impl][0]["first_loss"] - results[reference][0]["first_loss"]) for impl in kinds)
    print(f"first-step loss difference (same data, same init seed): {same_loss:.2e}")
    print(f"targets: tokens/s ≥ 1.5× {whose}: {'met' if speed >= 1.5 else 'NOT met'}; "
          f"peak memory ≤ 0.6× {whose}: {'met' if memory <= 0.6 else 'NOT met'}")


if __name__ == "__main__":
    main()
