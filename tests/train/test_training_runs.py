"""Whole runs on a tiny model: they learn, LoRA leaves the base alone, outputs land in the run folder."""

import json

import pytest
import torch
from safetensors.torch import load_file

from loralab.lora.interface import adapter_modules
from loralab.train.model_setup import base_model
from loralab.train.trainer import train


def _losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_lora_overfits_and_keeps_the_base_bit_identical(make_recipe):
    recipe = make_recipe("train.max_steps=40", "train.micro_batch_size=8")
    base, _ = base_model(recipe)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    result = train(recipe, progress=False)
    losses = _losses(result.run_dir)
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5

    # the adapter reloads onto a fresh base; every base weight of the trained model is unchanged
    from loralab.lora import load_adapter

    fresh, _ = base_model(recipe)
    load_adapter(fresh, result.run_dir / "adapter")
    seen = 0
    for path, module in adapter_modules(fresh):
        for name, tensor in module.base_layer.state_dict().items():
            assert torch.equal(tensor, before[f"{path}.{name}"])
            seen += 1
    assert seen > 0
    assert (result.run_dir / "loss.png").stat().st_size > 1000
    assert "LEARNED" not in (result.run_dir / "report.md").read_text()  # no evaluation asked


def test_trained_weights_really_are_the_saved_adapter(make_recipe):
    result = train(make_recipe("train.max_steps=3"), progress=False)
    saved = load_file(str(result.run_dir / "adapter" / "adapter_model.safetensors"))
    assert saved and all(t.abs().sum() > 0 for k, t in saved.items() if "lora_B" in k)  # B moved off zero


def test_full_fine_tuning_overfits_and_saves_a_hf_model(make_recipe):
    recipe = make_recipe("method=full", "lora=null", "optimizer.lr=1e-2", "train.max_steps=30", "train.micro_batch_size=8",
                         "model.dropout=0.1", "optimizer.weight_decay=0.01")  # fmt: skip
    result = train(recipe, progress=False)
    losses = _losses(result.run_dir)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(result.run_dir / "model")
    base, _ = base_model(recipe)
    changed = [n for n, p in reloaded.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
    assert len(changed) == len(list(base.named_parameters()))  # every weight trained


def test_continued_pretraining_on_packed_text(make_recipe):
    recipe = make_recipe("data.path=null", "data.task=source-text", "data.regime=pretraining", "data.block_size=32",
                         "data.examples=6", "train.max_steps=3")  # fmt: skip
    result = train(recipe, progress=False)
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    # packed blocks: every position but the first of each block is trained
    assert all(r["labelled_tokens"] == 4 * 31 for r in records)


def test_regime_must_match_the_data(make_recipe):
    from loralab.errors import DataError

    with pytest.raises(DataError, match="regime"):
        train(make_recipe("data.regime=pretraining"), progress=False)


def test_existing_run_folder_needs_force_or_resume(make_recipe):
    from loralab.errors import ConfigError

    recipe = make_recipe("train.max_steps=1")
    train(recipe, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(recipe, progress=False)
    train(recipe, progress=False, force=True)


def test_evaluation_before_every_n_steps_and_at_the_end(make_recipe):
    recipe = make_recipe("train.max_steps=4", "eval.tasks=[source-ppl, source-kl]", "eval.limit=1", "eval.every=2",
                         "eval.settings={window: 16}")  # fmt: skip
    result = train(recipe, progress=False)
    files = sorted(p.name for p in (result.run_dir / "eval").iterdir())
    assert files == ["before.json", "final.json", "step-00000002.json"]  # step 4 is the end: "final"
    final = {r["task"]: r["value"] for r in json.loads((result.run_dir / "eval" / "final.json").read_text())}
    before = {r["task"]: r["value"] for r in json.loads((result.run_dir / "eval" / "before.json").read_text())}
    assert before["source-kl"] == 0.0 and final["source-kl"] > 0  # the adapter moved the model
    assert final["source-ppl"] != before["source-ppl"]
    assert "FORGOTTEN" in (result.run_dir / "report.md").read_text()


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_trains_in_what_the_capability_check_says(make_recipe, monkeypatch, capsys, native, expected):
    import loralab.train.trainer as trainer_module
    from loralab.models import precision

    monkeypatch.setattr(precision, "_cpu_native_bf16", lambda: (native, "mocked CPU"))
    used = []
    real_autocast = trainer_module.autocast
    monkeypatch.setattr(trainer_module, "autocast", lambda name, device: used.append(name) or real_autocast(name, device))
    result = train(make_recipe("train.precision=auto", "train.max_steps=2"), progress=False)
    assert used == [expected, expected]  # one micro-batch per step
    assert f"training and evaluation in precision auto → {expected} (mocked CPU)" in capsys.readouterr().out
    assert f"precision auto → {expected}" in (result.run_dir / "report.md").read_text()
    assert "precision: auto" in (result.run_dir / "recipe.yaml").read_text()  # the recipe is saved as written


def test_base_perplexity_before_training_comes_from_the_final_kl_pass(make_recipe):
    """For an adapter run, before.json's source-ppl is the base's perplexity, measured at the end with the
    adapter switched off (the KL pass's base side): the same value as scoring the base before training."""
    from loralab.eval import evaluate

    recipe = make_recipe("train.max_steps=3", "eval.tasks=[source-ppl, source-kl]", "eval.limit=2",
                         "eval.settings={window: 16}", "eval.precision=fp32")  # fmt: skip
    base, tokenizer = base_model(recipe)
    expected = evaluate(base, tokenizer, ["source-ppl"], limit=2, progress=False, window=16)[0]
    result = train(recipe, progress=False)
    before = {r["task"]: r for r in json.loads((result.run_dir / "eval" / "before.json").read_text())}
    assert before["source-ppl"]["value"] == pytest.approx(expected.value, rel=1e-6)
    assert before["source-ppl"]["n"] == expected.n
    assert [r.task for r in result.eval_before] == ["source-kl", "source-ppl"]


def test_the_task_trained_on_is_evaluated_with_its_own_options(make_recipe):
    """data.task_options reach the evaluation of that task (held-out level-2 problems after level-2 training),
    and an evaluation setting that names the task wins; the recipe itself is left as written."""
    from loralab.data.tasks import get_task

    data = {"task": "arith", "task_options": {"level": 2}, "examples": 8, "max_length": 96}
    recipe = make_recipe("train.max_steps=1", "eval.tasks=[arith]", "eval.limit=3", "eval.before=false",
                         "eval.settings={max_new_tokens: 2}", data=data)  # fmt: skip
    assert recipe.eval.settings == {"max_new_tokens": 2}
    assert recipe.eval_settings["task_options"] == {"arith": {"level": 2}}
    result = train(recipe, progress=False)
    final = json.loads((result.run_dir / "eval" / "final.json").read_text())
    asked = [e["question"] for e in final[0]["details"]["examples"]]
    assert asked == [p.question for p in get_task("arith", level=2).test(3, 0)]
    assert recipe.eval.settings == {"max_new_tokens": 2}

    chosen = make_recipe("eval.tasks=[arith]", "eval.settings={task_options: {arith: {level: 3}}}", data=data)
    assert chosen.eval_settings["task_options"] == {"arith": {"level": 3}}
    from_file = make_recipe("eval.tasks=[arith]")  # data from a file: nothing to follow
    assert "task_options" not in from_file.eval_settings
