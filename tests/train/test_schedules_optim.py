import math

import pytest
import torch

import loralab
from loralab.errors import ConfigError
from loralab.models import tiny_model
from loralab.train.optim import OptimizerConfig, build_optimizer
from loralab.train.schedules import lr_multiplier


def test_cosine_with_warmup_hand_computed():
    f = lr_multiplier("cosine", total_steps=10, warmup_steps=2)
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5)  # halfway through the 8 decay steps: ½(1 + cos π/2)
    assert f(4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))
    assert f(10) == pytest.approx(0.0) and f(50) == pytest.approx(0.0)


def test_linear_constant_and_floor():
    lin = lr_multiplier("linear", total_steps=5, warmup_steps=0, min_ratio=0.2)
    assert [round(lin(t), 6) for t in range(6)] == [1.0, 0.84, 0.68, 0.52, 0.36, 0.2]
    const = lr_multiplier("constant", total_steps=5, warmup_steps=4)
    assert [const(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_schedule_bad_input():
    with pytest.raises(ConfigError, match="cosine"):
        lr_multiplier("exponential", 10)
    with pytest.raises(ConfigError):
        lr_multiplier("cosine", 0)


def test_loraplus_gives_b_its_ratio_and_decay_skips_vectors():
    model = tiny_model("llama", attention_bias=True)
    loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj"], bias="lora_only"))
    opt = build_optimizer(model, OptimizerConfig(lr=1e-3, loraplus_ratio=16, weight_decay=0.1))
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert id(param) not in by_param
        elif "lora_B" in name:
            assert (by_param[id(param)]["lr"], by_param[id(param)]["weight_decay"]) == (pytest.approx(16e-3), 0.1)
        elif "lora_A" in name:
            assert (by_param[id(param)]["lr"], by_param[id(param)]["weight_decay"]) == (1e-3, 0.1)
        else:  # the q_proj biases
            assert name.endswith("bias") and by_param[id(param)]["weight_decay"] == 0.0
    assert isinstance(opt, torch.optim.AdamW)


def test_optimizer_config_validation():
    with pytest.raises(ConfigError, match="optimizer"):
        OptimizerConfig(name="adam8bit")
    with pytest.raises(ConfigError, match="lr"):
        OptimizerConfig(lr=0)
    assert isinstance(build_optimizer(tiny_model(), OptimizerConfig(name="sgd")), torch.optim.SGD)


def test_fused_adamw_makes_the_foreach_update_and_auto_picks_foreach_on_cpu():
    """optimizer.implementation: fused (one kernel; the default on CUDA) and foreach give the same steps."""
    weights = {}
    for implementation in ("foreach", "fused", "auto"):
        torch.manual_seed(0)
        model = tiny_model("llama")
        loralab.add_adapter(model, loralab.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
        opt = build_optimizer(model, OptimizerConfig(lr=1e-2, weight_decay=0.1, implementation=implementation))
        assert opt.param_groups[0]["fused"] is (True if implementation == "fused" else None)
        assert opt.param_groups[0]["foreach"] is (None if implementation == "fused" else True)
        ids = torch.randint(0, model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(1))
        for _ in range(3):
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad()
        weights[implementation] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    moved = weights["foreach"]
    assert any("lora_B" in n and t.abs().max() > 1e-3 for n, t in moved.items())
    for name, value in moved.items():
        torch.testing.assert_close(weights["fused"][name], value, rtol=1e-5, atol=1e-6)
        assert torch.equal(weights["auto"][name], value)  # auto on the CPU: foreach itself
    with pytest.raises(ConfigError, match="implementation"):
        OptimizerConfig(implementation="apex")
