"""QLoRA end to end on a tiny Llama: training touches only the adapters, then dequantize + merge."""

import pytest
import torch

import loralab
from loralab.errors import LoraLabError
from loralab.quant import NF4Linear, QuantConfig, dequantize_base, quantize_base


def _qlora(make_model, compute="bfloat16", r=8):
    model = quantize_base(make_model(), QuantConfig(compute_dtype=compute))
    return loralab.add_adapter(model, loralab.LoraConfig(r=r, alpha=16))


def _nf4_state(model):
    return {f"{name}.{b}": t.clone() for name, m in model.named_modules() if isinstance(m, NF4Linear) for b, t in m.named_buffers()}


@pytest.mark.parametrize("autocast", [False, True])
def test_a_few_adamw_steps_train_only_the_adapters(make_model, tokens, autocast):
    model = _qlora(make_model)
    codes, frozen = _nf4_state(model), {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    losses = []
    for _ in range(15):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(tokens, labels=tokens).loss
        loss.backward()
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        assert with_grad and all(".lora_A." in n or ".lora_B." in n for n in with_grad)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3  # measured 4.84 → 4.29, with and without autocast
    after = _nf4_state(model)
    assert after.keys() == codes.keys() and all(torch.equal(after[k], v) and after[k].dtype == v.dtype for k, v in codes.items())
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert all(p.dtype == torch.float32 for p in trainable)


@pytest.mark.parametrize(
    "compute, tolerance",
    # measured max |Δlogit| (logits up to 0.43, adapters moving them by 0.5): 6e-8 to 2e-6 with float32
    # compute (float32 rounding of W + ΔW), 1.3e-3 to 1.6e-3 with bfloat16 (x and Ŵ are rounded to bf16)
    [("float32", 1e-5), ("bfloat16", 5e-3)],
)
def test_dequantize_then_merge_gives_the_qlora_model(make_model, tokens, randomize, compute, tolerance):
    """The merged fp32 model (Ŵ + scale·B·A) against the QLoRA model (4-bit Ŵ, adapters beside it)."""
    model = randomize(_qlora(make_model, compute), std=0.5)
    with torch.no_grad():
        qlora = model(tokens).logits
        with pytest.raises(LoraLabError, match="call loralab.dequantize_base\\(model\\) first, then merge"):
            loralab.merge(model)
        with loralab.disabled(model):  # merge/unmerge bookkeeping with nothing merged still works
            base = model(tokens).logits
        assert (qlora - base).abs().max() > 0.1  # the adapters matter
        merged = loralab.unload(dequantize_base(model), merge=True)
        assert not any(isinstance(m, NF4Linear) for m in merged.modules())
        diff = (merged(tokens).logits - qlora).abs().max().item()
    assert diff < tolerance
