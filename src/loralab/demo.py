"""The main job until the trainer lands: LoRA on the bundled SmolLM2, end to end.

Loads SmolLM2-135M-Instruct, adds LoRA (r=16, all linear layers), prints the trainable
parameters, gives the adapter non-zero weights (a stand-in for training) and checks that
merged, unmerged, unloaded and reloaded models compute the same logits.

Run: ``make demo`` (or ``python -m loralab.demo``).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import loralab
from loralab.log import show_progress_messages
from loralab.models import load_model

PROMPT = "Tom has 3 apples and buys 4 more. How many apples does he have?"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="loralab demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args(argv)
    show_progress_messages()
    torch.manual_seed(0)  # A's random init: the same figures on every run

    start = time.perf_counter()
    model, tokenizer = load_model(args.model)
    print(f"loaded {args.model} in {time.perf_counter() - start:.1f} s")
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        base_logits = model(**inputs).logits

    config = loralab.LoraConfig(r=16, alpha=32, target_modules="all-linear")
    loralab.add_adapter(model, config)
    loralab.trainable_parameters(model)
    with torch.no_grad():  # non-zero B, as after training, so that the checks below mean something
        gen = torch.Generator().manual_seed(0)
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=gen) * 1e-3)

    with torch.no_grad():
        adapted = model(**inputs).logits
        loralab.merge(model)
        merged = model(**inputs).logits
        loralab.unmerge(model)
        unmerged = model(**inputs).logits
        with loralab.disabled(model):
            disabled = model(**inputs).logits
    print(f"adapter changes the logits by up to      {_max_diff(adapted, base_logits):.4f}")
    print(f"merged vs unmerged, max |Δ logit|:        {_max_diff(merged, adapted):.2e}")
    print(f"unmerged again vs before, max |Δ logit|:  {_max_diff(unmerged, adapted):.2e}")
    print(f"disabled vs base model, max |Δ logit|:    {_max_diff(disabled, base_logits):.2e}")

    with tempfile.TemporaryDirectory() as folder:
        loralab.save_adapter(model, folder)
        fresh, _ = load_model(args.model)
        loralab.load_adapter(fresh, folder)
        with torch.no_grad():
            reloaded = fresh(**inputs).logits
    print(f"saved + reloaded (PEFT format), max |Δ|:  {_max_diff(reloaded, adapted):.2e}")

    ok = all(_max_diff(x, adapted) < 1e-3 for x in (merged, unmerged, reloaded)) and _max_diff(disabled, base_logits) < 1e-3
    print("PASS: merged = unmerged = reloaded; disabled = base" if ok else "FAIL: the outputs disagree")
    print(f"done in {time.perf_counter() - start:.1f} s")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
