"""The training step alone, on a tiny model: against a hand-written step, accumulation, clipping, the
schedule, and a non-finite loss that leaves the weights untouched."""

import copy
import math
from dataclasses import replace

import pytest
import torch

from loralab import LoraConfig, add_adapter
from loralab.data import PaddingCollator, build_dataset
from loralab.models import load_model
from loralab.train.objectives import SupervisedObjective
from loralab.train.step import EmptyStep, NonFiniteStep, TrainStep


@pytest.fixture
def setup(data_file):
    torch.manual_seed(0)
    model, tokenizer = load_model("tiny-llama")
    add_adapter(model, LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "lm_head"]))
    with torch.no_grad():  # non-zero adapters: B random
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    model.train()
    dataset = build_dataset(str(data_file), tokenizer, max_length=64)
    collate = PaddingCollator.for_tokenizer(tokenizer)
    examples = list(dataset)[:8]
    return model, collate, examples


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def _step(model, schedule=lambda s: 1.0, max_grad_norm=0.0, lr=1e-2):
    optimizer = torch.optim.SGD(_trainable(model), lr=lr)
    return TrainStep(model, SupervisedObjective(), optimizer, schedule, max_grad_norm)


def test_one_step_equals_a_hand_written_sgd_step_and_accumulation_equals_one_big_batch(setup):
    model, collate, examples = setup
    twin = copy.deepcopy(model)
    # hand-written reference: mean token loss of the whole batch, plain SGD, lr 0.01 × multiplier 0.5
    reference = twin(**collate(examples)).loss
    reference.backward()
    with torch.no_grad():
        expected = [p - 0.01 * 0.5 * p.grad for p in _trainable(twin)]
    step = _step(model, schedule=lambda s: 0.5)
    result = step(0, [collate(examples[:3]), collate(examples[3:])])  # two micro-batches of unequal size
    assert result.loss == pytest.approx(reference.item(), rel=1e-5)
    assert result.lr_multiplier == 0.5 and step.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    for got, want in zip(_trainable(model), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in _trainable(model))  # cleared for the next step


def test_the_gradient_norm_is_measured_then_clipped(setup):
    model, collate, examples = setup
    twin = copy.deepcopy(model)
    twin(**collate(examples)).loss.backward()
    norm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in _trainable(twin)))
    before = [p.detach().clone() for p in _trainable(model)]
    result = _step(model, max_grad_norm=norm / 10, lr=1.0)(0, [collate(examples)])
    assert result.grad_norm == pytest.approx(norm, rel=1e-4)
    moved = math.sqrt(sum(float((p.detach() - b).double().pow(2).sum()) for p, b in zip(_trainable(model), before)))
    assert moved == pytest.approx(norm / 10, rel=1e-3)  # SGD with lr 1 moves by the clipped gradient


def test_a_non_finite_loss_raises_and_changes_nothing(setup, monkeypatch):
    model, collate, examples = setup
    real = SupervisedObjective.__call__
    monkeypatch.setattr(SupervisedObjective, "__call__",
                        lambda self, m, b: replace(real(self, m, b), loss_sum=real(self, m, b).loss_sum * float("nan")))  # fmt: skip
    before = [p.detach().clone() for p in _trainable(model)]
    with pytest.raises(NonFiniteStep) as caught:
        _step(model)(4, [collate(examples)])
    assert caught.value.step == 4 and caught.value.quantity == "loss"
    assert all(torch.equal(p, b) for p, b in zip(_trainable(model), before))
    assert all(p.grad is None for p in _trainable(model))


def test_a_step_with_nothing_labelled_is_refused(setup):
    model, collate, examples = setup
    batch = collate(examples[:2])
    batch["labels"] = torch.full_like(batch["labels"], -100)
    with pytest.raises(EmptyStep, match="nothing to learn"):
        _step(model)(0, [batch])


def test_batch_plan_split_across_processes_covers_what_one_process_sees():
    from loralab.process import ProcessRole
    from loralab.train.batches import BatchPlan

    one = BatchPlan(examples=37, micro_batch_size=6, grad_accum=2, seed=3)
    ranks = [BatchPlan(examples=37, micro_batch_size=3, grad_accum=2, seed=3, role=ProcessRole(r, 2)) for r in range(2)]
    for step in range(8):  # more than two epochs
        together = [sorted(ranks[0].step(step)[i] + ranks[1].step(step)[i]) for i in range(2)]
        assert together == [sorted(b) for b in one.step(step)]
        assert not set(ranks[0].step(step)[0]) & set(ranks[1].step(step)[0])
    assert ranks[1].total_steps(1.0, None) == one.total_steps(1.0, None)
    with pytest.raises(ValueError, match="outside"):
        ProcessRole(2, 2)


def test_the_writer_is_rank_zero(monkeypatch):
    from loralab.process import ProcessRole, current_role, show_progress

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert current_role() == ProcessRole(1, 2) and not current_role().writes and not show_progress(True)
    monkeypatch.setenv("RANK", "0")
    assert current_role().writes and show_progress(True) and not show_progress(False)
