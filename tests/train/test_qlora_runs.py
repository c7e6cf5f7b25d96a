"""``method: qlora`` through the trainer: it learns on a 4-bit base, resumes only with the same
quantization, and merges into a 16-bit model close to the quantized one."""

import json

import pytest
import torch

from loralab.cli import main
from loralab.errors import ConfigError
from loralab.lora import load_adapter
from loralab.quant.nf4_linear import NF4Linear
from loralab.train.model_setup import base_model
from loralab.train.trainer import resume, train


def test_qlora_learns_and_the_4bit_base_stays_put(make_recipe):
    recipe = make_recipe("method=qlora", "train.max_steps=30", "train.micro_batch_size=8", "quant.compute_dtype=float32")
    result = train(recipe, progress=False)
    losses = [json.loads(l)["loss"] for l in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert "bits/param" in (result.run_dir / "report.md").read_text()  # the 4-bit memory is reported
    model, _ = base_model(recipe)
    quantized = [m for m in model.modules() if isinstance(m, NF4Linear)]
    assert quantized  # the recipe's base is 4-bit
    reference, _ = base_model(recipe)
    load_adapter(reference, result.run_dir / "adapter")
    codes = [m.codes for m in reference.modules() if isinstance(m, NF4Linear)]
    assert all(torch.equal(a.codes, b) for a, b in zip(quantized, codes))  # quantization is deterministic


def test_resuming_with_another_quantization_is_refused(make_recipe):
    first = train(make_recipe("method=qlora", "train.max_steps=1"), progress=False)
    with pytest.raises(ConfigError, match="quant"):
        resume(first.run_dir, ["quant.double_quant=false"], progress=False)


def test_merged_qlora_model_is_close_to_the_quantized_one(make_recipe, tmp_path):
    """Merge = dequantize (exactly the weights the adapter saw) + scale·B·A in float32, written in bf16.
    Measured here: max |Δlogit| 6.2e-3 (max |logit| 3.6), from the bf16 rounding of the merged weights."""
    recipe = make_recipe("method=qlora", "train.max_steps=5", "quant.compute_dtype=float32")
    run = train(recipe, progress=False)
    out = tmp_path / "merged"
    assert main(["merge", str(run.run_dir), "--out", str(out)]) == 0
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out, dtype="auto")  # the dtype written (4.x's default is float32)
    assert next(merged.parameters()).dtype == torch.bfloat16
    qlora, _ = base_model(recipe)
    load_adapter(qlora, run.run_dir / "adapter")
    ids = torch.tensor([[1, 5, 9, 200, 17, 3000, 42, 7]])
    with torch.no_grad():
        expected = qlora(input_ids=ids).logits
        got = merged.float()(input_ids=ids).logits
    print(f"max |Δlogit| {(got - expected).abs().max():.3g}, max |logit| {expected.abs().max():.3g}")
    assert (got - expected).abs().max() < 5e-2
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
