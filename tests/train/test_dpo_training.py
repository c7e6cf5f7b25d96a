"""DPO through the trainer: log 2 at the start, the preference learned with the base untouched, the
reference from the switched-off adapter equal to a precomputed one and to a frozen copy, exact resume."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from loralab.train.runs import RunFolder
from loralab.train.objectives.dpo import REFERENCE_FILE, AdapterOff, FrozenCopy, PreferenceObjective
from loralab.train.trainer import Trainer, resume, train

DPO = {"objective": "dpo", "max_steps": 4, "micro_batch_size": 4, "schedule": "constant", "precision": "fp32"}


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def dpo_recipe(make_recipe):
    def make(*overrides, **sections):
        base = {"data": {"task": "arith-preference", "examples": 16, "regime": "preference", "max_length": 160},
                "train": dict(DPO), "dpo": {"beta": 0.1}}  # fmt: skip
        base.update(sections)
        return make_recipe(*overrides, **base)

    return make


def test_first_step_is_log_2_and_the_preference_is_learned_with_the_base_untouched(dpo_recipe):
    from loralab.models import load_model

    result = train(dpo_recipe("train.max_steps=25", "optimizer.lr=1e-2"), progress=False)
    records = _records(result.run_dir)
    assert records[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert records[0]["reward_margin"] == pytest.approx(0.0, abs=1e-6)
    assert records[0]["pairs"] == 4 and "labelled_tokens" not in records[0]
    late = records[-5:]
    assert sum(r["reward_accuracy"] for r in late) / len(late) > 0.8
    assert sum(r["reward_margin"] for r in late) / len(late) > 10 * max(abs(records[1]["reward_margin"]), 1e-3)
    assert late[-1]["loss"] < 0.5 * math.log(2)
    # the frozen base is bit-identical: merging nothing back, the adapter's base weights are the loader's
    trained, _ = load_model("tiny-llama")
    from loralab import load_adapter

    load_adapter(trained, str(result.run_dir / "adapter"))
    fresh, _ = load_model("tiny-llama")
    base = {name.replace(".base_layer", ""): p for name, p in trained.named_parameters() if "lora_" not in name}
    for name, param in fresh.named_parameters():
        assert torch.equal(base[name], param), name


def test_precomputed_reference_equals_the_switched_off_adapter_and_a_frozen_copy(dpo_recipe):
    result = train(dpo_recipe("dpo.precompute_reference=true", "train.max_steps=2", "name=pre"), progress=False)
    table = load_file(str(result.run_dir / REFERENCE_FILE))["reference_log_probs"]
    trainer = Trainer(dpo_recipe("train.max_steps=2", "name=otf"), RunFolder(result.run_dir.parent / "otf"), False)
    trainer._setup(resume=False)
    assert table.shape == (len(trainer.dataset), 2)
    objective = PreferenceObjective()
    collate = objective.collator(trainer.tokenizer)
    batch = collate([trainer.dataset[i] for i in range(len(trainer.dataset))])
    off = AdapterOff().log_probs(trainer.model, batch)
    copy = FrozenCopy(trainer._frozen_base()).log_probs(trainer.model, batch)
    pairs = len(trainer.dataset)
    torch.testing.assert_close(torch.stack([off[:pairs], off[pairs:]], 1), table, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(off, copy, rtol=0, atol=0)
    # and the runs train the same: losses with the precomputed table equal those computed on the fly
    otf = train(dpo_recipe("train.max_steps=2", "name=otf2"), progress=False)
    for mine, theirs in zip(_records(result.run_dir), _records(otf.run_dir)):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert mine["reward_margin"] == pytest.approx(theirs["reward_margin"], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("precompute", [False, True], ids=["on-the-fly", "precomputed"])
def test_dpo_resume_equals_the_uninterrupted_run(dpo_recipe, monkeypatch, tmp_path, precompute):
    settings = ("train.max_steps=6", "lora.dropout=0.1", "train.checkpoint_every=2", f"dpo.precompute_reference={precompute}")
    expected = _records(train(dpo_recipe(*settings, "name=straight"), progress=False).run_dir)
    real = Trainer._step

    def step(self, index):
        if index == 3:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(Trainer, "_step", step)
    with pytest.raises(KeyboardInterrupt):
        train(dpo_recipe(*settings, "name=cut"), progress=False)
    monkeypatch.undo()
    got = _records(resume(tmp_path / "runs" / "cut", progress=False).run_dir)
    assert [r["step"] for r in got] == [1, 2, 3, 4, 5, 6]
    for mine, theirs in zip(got, expected):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-6, abs=1e-7)
        assert mine["reward_accuracy"] == theirs["reward_accuracy"]


def test_full_fine_tuning_dpo_uses_a_frozen_copy_and_starts_at_log_2(dpo_recipe):
    result = train(dpo_recipe("method=full", "lora=null", "train.max_steps=2", "optimizer.lr=1e-4", "name=full"), progress=False)
    first = _records(result.run_dir)[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert _records(result.run_dir)[1]["reward_margin"] != 0.0


def test_qlora_dpo_uses_the_4bit_base_with_the_adapter_off_as_reference(dpo_recipe):
    """Method qlora: the reference is the NF4 base itself (adapter off): log 2 at the start, then learning."""
    result = train(dpo_recipe("method=qlora", "quant.compute_dtype=float32", "train.max_steps=12", "optimizer.lr=1e-2",
                              "name=qlora"), progress=False)  # fmt: skip
    records = _records(result.run_dir)
    assert records[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert records[-1]["reward_margin"] > 0 and records[-1]["loss"] < math.log(2)
    assert (result.run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_preference_metrics_before_and_after(dpo_recipe, tmp_path):
    """eval task pref:F on the training pairs: the base scores accuracy 0, margin 0, loss log 2 (the adapter
    starts at zero), the trained adapter prefers the chosen answers; arith-preference = pref:F of its pairs."""
    from loralab import load_adapter
    from loralab.data.tasks import get_task
    from loralab.eval import evaluate
    from loralab.models import load_model

    task = get_task("arith-preference")

    def pair_file(name, problems):
        path = tmp_path / name
        path.write_text("".join(json.dumps(task.to_record(p).as_row()) + "\n" for p in problems))
        return path

    seen = pair_file("train.jsonl", task.train(16, 0))
    result = train(dpo_recipe("train.max_steps=20", "optimizer.lr=1e-2", f"eval.tasks=[pref:{seen}]", "name=pref",
                         "eval.precision=fp32"),  # as the reload below evaluates, on any CPU
                   progress=False)  # fmt: skip
    before = {r.metric: r.value for r in result.eval_before}
    after = {r.metric: r.value for r in result.eval_final}
    assert before == pytest.approx({"reward_accuracy": 0.0, "reward_margin": 0.0, "dpo_loss": math.log(2)}, abs=1e-9)
    assert after["reward_accuracy"] > 0.8 and after["reward_margin"] > 0 and after["dpo_loss"] < 0.5 * math.log(2)
    model, tokenizer = load_model("tiny-llama")
    load_adapter(model, str(result.run_dir / "adapter"))
    again = {r.metric: r.value for r in evaluate(model, tokenizer, [f"pref:{seen}"], progress=False)}
    assert again == pytest.approx(after, rel=1e-4)
    builtin = {r.metric: r.value for r in evaluate(model, tokenizer, ["arith-preference"], limit=8, progress=False)}
    from_file = {r.metric: r.value for r in evaluate(model, tokenizer, [f"pref:{pair_file('test.jsonl', task.test(8, 0))}"],
                                                     progress=False)}  # fmt: skip
    assert builtin == pytest.approx(from_file, rel=1e-9) and builtin != pytest.approx(before)
