"""The DPO objective on a tiny model: policy log-probabilities through the restricted head equal the
full-logits ones; a zero adapter gives log 2; the reference by switching the adapter off equals a frozen
copy and a precomputed one; a few steps learn the preference while the base stays bit-identical."""

import copy
import math

import pytest
import torch

from loralab import LoraConfig, add_adapter
from loralab.models import load_model
from loralab.eval.preference_scores import response_log_probs
from loralab.train.objectives.dpo import FrozenCopy, Precomputed, PreferenceObjective, PreferenceOptions
from loralab.eval.preference_scores import sequence_log_probs
from loralab.train.step import TrainStep

PAIRS = 4


def _pairs(vocab: int, seed: int = 0) -> list[dict]:
    """P pairs of random token ids: a shared prompt (no loss), a chosen and a rejected response."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for i in range(PAIRS):
        prompt = torch.randint(0, vocab, (5 + i,), generator=g).tolist()
        sides = {}
        for side, length in (("chosen", 4 + i % 2), ("rejected", 3 + i % 3)):
            response = torch.randint(0, vocab, (length,), generator=g).tolist()
            sides[side] = {"input_ids": prompt + response, "labels": [-100] * len(prompt) + response}
        pairs.append(sides)
    return pairs


@pytest.fixture
def tiny():
    model, tokenizer = load_model("tiny-llama")
    return model.double(), tokenizer


def _batch(objective, tokenizer, vocab):
    return objective.collator(tokenizer)(_pairs(vocab))


def _nonzero_adapter(model):
    add_adapter(model, LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj", "lm_head"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model


def test_restricted_head_log_probs_equal_full_logits(tiny):
    model, tokenizer = tiny
    _nonzero_adapter(model)
    batch = _batch(PreferenceObjective(), tokenizer, model.config.vocab_size)
    sums, counts = response_log_probs(model, batch)
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected, expected_counts = sequence_log_probs(full, batch["labels"])
    torch.testing.assert_close(sums, expected, rtol=1e-10, atol=1e-10)
    assert counts.tolist() == expected_counts.tolist()
    assert batch["input_ids"].shape[0] == 2 * PAIRS


def test_a_zero_adapter_gives_log_2_and_zero_rewards(tiny):
    model, tokenizer = tiny
    add_adapter(model, LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))  # B = 0: policy = reference
    objective = PreferenceObjective(PreferenceOptions(beta=0.1))
    out = objective(model, _batch(objective, tokenizer, model.config.vocab_size))
    assert out.normaliser == PAIRS
    assert float(out.loss_sum.detach()) / PAIRS == pytest.approx(math.log(2), rel=1e-12)
    assert out.metrics["reward_margin"] == 0.0 and out.metrics["reward_accuracy"] == 0.0


def test_the_three_references_agree(tiny):
    model, tokenizer = tiny
    frozen = copy.deepcopy(model).requires_grad_(False)
    _nonzero_adapter(model)
    off = PreferenceObjective()
    batch = _batch(off, tokenizer, model.config.vocab_size)
    by_switch = off.reference.log_probs(model, batch)
    by_copy = FrozenCopy(frozen).log_probs(model, batch)
    torch.testing.assert_close(by_switch, by_copy, rtol=1e-12, atol=1e-12)
    with_policy = response_log_probs(model, batch)[0]
    assert not torch.allclose(with_policy, by_switch)  # the adapter does change the log-probabilities
    losses = []
    for objective, data in ((off, batch), (PreferenceObjective(reference=Precomputed()), {**batch, "reference_log_probs": by_copy})):
        losses.append(float(objective(model, data).loss_sum.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)


@pytest.mark.parametrize("options", [PreferenceOptions(beta=0.5), PreferenceOptions(beta=0.5, loss="ipo"),
                                     PreferenceOptions(beta=0.5, label_smoothing=0.1, sft_weight=0.5)])  # fmt: skip
def test_training_learns_the_preference_and_leaves_the_base_alone(options):
    torch.manual_seed(0)
    model, tokenizer = load_model("tiny-llama")
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    add_adapter(model, LoraConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj", "down_proj", "lm_head"]))
    objective = PreferenceObjective(options)
    batch = objective.collator(tokenizer)(_pairs(model.config.vocab_size, seed=3))
    trainable = [p for p in model.parameters() if p.requires_grad]
    step = TrainStep(model, objective, torch.optim.AdamW(trainable, lr=1e-2), lambda s: 1.0, max_grad_norm=1.0)
    results = [step(s, [batch]) for s in range(25)]
    assert results[0].metrics["reward_margin"] == 0.0
    assert results[-1].metrics["reward_accuracy"] == 1.0
    assert results[-1].metrics["reward_margin"] > 0.25  # IPO pulls the margin to β · 1/(2β) = 0.5 and no further
    assert results[-1].loss < results[0].loss
    for name, param in model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(param.detach(), base[name.replace(".base_layer", "")]), name


def test_bad_options_are_one_line_errors():
    from loralab.errors import ConfigError

    for bad in (dict(beta=0), dict(beta=float("nan")), dict(loss="hinge"), dict(label_smoothing=0.5), dict(loss="ipo", label_smoothing=0.1)):
        with pytest.raises(ConfigError):
            PreferenceOptions(**bad)
