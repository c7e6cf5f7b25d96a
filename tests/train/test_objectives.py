"""The supervised objective alone: its loss equals Hugging Face's full-logits loss, the head sees only the
labelled positions, and the call goes through the model's forward (hooks see it)."""

import pytest
import torch

from loralab.data import PaddingCollator, build_dataset
from loralab.models import load_model
from loralab.train.objectives import OBJECTIVES, SupervisedObjective


def _batch(kind, data_file, n=4):
    model, tokenizer = load_model(kind)
    dataset = build_dataset(str(data_file), tokenizer, max_length=64)
    return model, PaddingCollator.for_tokenizer(tokenizer)(list(dataset)[:n])


@pytest.mark.parametrize("kind", ["tiny-llama", "tiny-gpt2"])
def test_supervised_loss_and_gradient_equal_the_full_logits_loss(kind, data_file):
    model, batch = _batch(kind, data_file)
    objective = SupervisedObjective()
    out = objective(model, batch)
    assert out.normaliser == objective.normaliser(batch) == int((batch["labels"][:, 1:] != -100).sum()) > 0
    (out.loss_sum / out.normaliser).backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    reference = model(**batch).loss  # Hugging Face: mean over shifted labels, full logits
    reference.backward()
    torch.testing.assert_close(out.loss_sum / out.normaliser, reference, rtol=1e-5, atol=1e-6)
    for name, param in model.named_parameters():
        torch.testing.assert_close(ours[name], param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_head_sees_only_labelled_positions_and_hooks_see_the_forward(data_file):
    model, batch = _batch("tiny-llama", data_file)
    seen = {}

    def on_model(module, args, kwargs):
        seen["model"] = kwargs["input_ids"].shape

    def on_head(module, args, output):
        seen["head"] = output.shape

    model.register_forward_pre_hook(on_model, with_kwargs=True)
    model.get_output_embeddings().register_forward_hook(on_head)
    out = SupervisedObjective()(model, batch)
    assert seen["model"] == batch["input_ids"].shape  # through model.forward, not around it
    assert seen["head"] == (out.normaliser, model.config.vocab_size)  # (N, vocab), not (batch, L, vocab)
    assert out.normaliser < batch["input_ids"].numel()
    # the hook is gone afterwards: a plain forward gives full logits again
    assert model(input_ids=batch["input_ids"]).logits.shape[:2] == batch["input_ids"].shape


def test_an_unlabelled_batch_has_normaliser_zero_and_objectives_are_a_table(data_file):
    _, batch = _batch("tiny-llama", data_file, n=2)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    assert SupervisedObjective().normaliser(batch) == 0
    assert OBJECTIVES["supervised"] is SupervisedObjective and OBJECTIVES["dpo"].name == "dpo"


def test_the_head_and_loss_are_fused_where_the_head_is_plain(data_file, monkeypatch):
    from loralab.models import head_loss

    model, batch = _batch("tiny-llama", data_file)
    calls = []
    real = head_loss.linear_cross_entropy
    monkeypatch.setattr(head_loss, "linear_cross_entropy", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    objective = SupervisedObjective()
    out = objective(model, batch)
    assert calls == [(out.normaliser, model.config.hidden_size)] and objective.fuse_head
    assert "forward" not in model.get_output_embeddings().__dict__  # the head is itself again afterwards


def test_a_model_that_transforms_its_logits_falls_back_to_them(data_file):
    """A model that changes the head's output (here: scales it, as logit soft-capping would) cannot
    use the fused loss; the objective notices and computes the loss from the transformed logits."""
    model, batch = _batch("tiny-llama", data_file)

    def scale(module, args, output):
        output.logits = output.logits * 0.5
        return output

    model.register_forward_hook(scale)
    objective = SupervisedObjective()
    out = objective(model, batch)
    assert not objective.fuse_head
    keep = batch["labels"][:, 1:] != -100
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][keep]
    torch.testing.assert_close(out.loss_sum, torch.nn.functional.cross_entropy(logits.float(), batch["labels"][:, 1:][keep], reduction="sum"))
