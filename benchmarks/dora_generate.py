#!/usr/bin/env python
"""Greedy generation with a DoRA adapter on SmolLM2-135M-Instruct: loralab with the norm ‖W + s·B·A‖ kept between
forwards (what evaluation does), loralab recomputing it at every forward (as before), and PEFT (which recomputes it).

One adapter (r = 16, all linear layers, random B, magnitudes ‖W + ΔL‖ scaled per row in [0.5, 1.5)), saved and
loaded by PEFT, so that all three generate the same tokens (checked). ``--batch`` prompts, ``--tokens`` new tokens
each, float32; the implementations take turns ``--rounds`` times in one process, the median time is printed.

Run:  .venv/bin/python benchmarks/dora_generate.py [--batch 4] [--tokens 32] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import peft

    import loralab.lora.fused_dora as fused_dora
    from loralab import LoraConfig, add_adapter, save_adapter
    from loralab.lora.variants import dora
    from loralab.models import load_model, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    ours = load_model("smollm2-135m-instruct", dtype=torch.float32)[0]
    add_adapter(ours, LoraConfig(r=16, alpha=32, target_modules="all-linear", use_dora=True))
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
            elif "magnitude" in name:
                param.mul_(0.5 + torch.rand(param.shape))
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_adapter(ours, folder)
        theirs = peft.PeftModel.from_pretrained(load_model("smollm2-135m-instruct", dtype=torch.float32)[0], folder)
    ours.eval(), theirs.eval()
    prompts = [f"What is {12 + i} plus {30 + 2 * i}?" for i in range(args.batch)]
    tokenizer.padding_side = "left"  # generation continues each row's own last token
    batch = tokenizer(prompts, return_tensors="pt", padding=True)

    kept = fused_dora.layer_direction_norm

    def recomputed(layer, name, W=None):
        W = layer.canonical_weight() if W is None else W
        return dora.direction_norm(W, layer.lora_A[name], layer.lora_B[name], layer.specs[name].scale)

    def generate(model, norm=kept):
        fused_dora.layer_direction_norm = norm
        with torch.no_grad():
            return model.generate(**batch, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False,
                                  pad_token_id=tokenizer.pad_token_id)  # fmt: skip

    runs = {"loralab": lambda: generate(ours), "loralab, norm recomputed": lambda: generate(ours, recomputed),
            "peft": lambda: generate(theirs)}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)
    fused_dora.layer_direction_norm = kept
    cpu = "AVX512-BF16" if "avx512_bf16" in open("/proc/cpuinfo").read() else "AVX2 only"
    print(f"\nDoRA greedy generation, SmolLM2-135M-Instruct fp32, {args.batch} prompts × {args.tokens} new tokens, "
          f"CPU {cpu}, {torch.get_num_threads()} threads, median of {args.rounds} alternating rounds\n")  # fmt: skip
    reference = statistics.median(times["peft"])
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name:<26}{median:8.2f} s{args.batch * args.tokens / median:8.1f} tokens/s{median / reference:7.2f}× PEFT")
    same = all(torch.equal(outputs[name], outputs["peft"]) for name in runs)
    print(f"\nsame tokens from all three: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
