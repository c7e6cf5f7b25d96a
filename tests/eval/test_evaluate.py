import json
from pathlib import Path

import pytest

import loralab
from loralab.errors import ConfigError, DataError
from loralab.eval import TaskResult, compare_table, evaluate, results_table, to_json
from loralab.eval.cli import main as eval_main


@pytest.fixture(scope="module")
def tiny_chat():
    from loralab.models import load_model

    model, tokenizer = load_model("tiny-llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=4, target_modules="all-linear"))
    return model, tokenizer


def test_end_to_end_on_a_tiny_model(tiny_chat):
    model, tokenizer = tiny_chat
    tasks = ["arith", "pycode", "source-ppl", "source-kl"]
    results = evaluate(model, tokenizer, tasks, limit=1, max_new_tokens=4, samples=2, k=2, progress=False)
    by_metric = {(r.task, r.metric): r for r in results}
    assert set(by_metric) == {("arith", "accuracy"), ("arith", "strict_accuracy"), ("pycode", "pass@1"), ("pycode", "pass@2"),
                              ("pycode", "distinct-solutions"), ("source-ppl", "perplexity"),
                              ("source-kl", "kl_to_base")}  # fmt: skip
    assert by_metric[("arith", "accuracy")].n == 1 and by_metric[("pycode", "pass@1")].n == 1
    assert by_metric[("pycode", "pass@1")].details["outcomes"]  # every sample ran in the sandbox
    assert by_metric[("source-ppl", "perplexity")].value > 1
    assert by_metric[("source-kl", "kl_to_base")].value == 0.0  # fresh adapter: B = 0
    assert all(r.seconds > 0 for r in results)
    records = json.loads(to_json(results))
    assert len(records) == len(results) and records[0]["task"] == "arith"
    assert "source-ppl" in results_table(results)


def test_file_tasks(tiny, char_tokenizer, tmp_path):
    hellaswag = tmp_path / "hs.jsonl"
    rows = [{"ctx": "The cat sat on", "endings": ["the mat.", "a dog."], "label": 0}] * 3
    hellaswag.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    text = tmp_path / "notes.txt"
    text.write_text("First paragraph of text.\n\nSecond paragraph.\n")
    results = evaluate(tiny, char_tokenizer, [f"hellaswag:{hellaswag}", f"ppl:{text}"], limit=2, progress=False)
    assert [(r.metric, r.n) for r in results] == [("acc", 2), ("acc_norm", 2), ("perplexity", 39)]
    assert {r.domain for r in results} == {"source"}


def test_bad_inputs(tiny, char_tokenizer, tmp_path):
    with pytest.raises(ConfigError, match="Known tasks: arith, pycode"):
        evaluate(tiny, char_tokenizer, ["nope"])
    for limit in (0, -3):
        with pytest.raises(ConfigError, match="limit"):
            evaluate(tiny, char_tokenizer, ["arith"], limit=limit)
    with pytest.raises(ConfigError, match="gsm8k:PATH"):
        evaluate(tiny, char_tokenizer, ["gsm8k"])
    with pytest.raises(DataError, match="no such file"):
        evaluate(tiny, char_tokenizer, [f"ppl:{tmp_path / 'missing.txt'}"])
    bad = tmp_path / "gsm.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "2\\n#### 2"}\n{"question": "no answer"}\n')
    with pytest.raises(DataError, match=r"gsm\.jsonl:2"):
        evaluate(tiny, char_tokenizer, [f"gsm8k:{bad}"])
    with pytest.raises(ConfigError, match="k <= samples"):
        evaluate(tiny, char_tokenizer, ["pycode"], samples=2, k=5)
    with pytest.raises(ConfigError, match="Unknown evaluation settings"):
        evaluate(tiny, char_tokenizer, ["arith"], temprature=1.0)


def test_comparison_shows_learned_and_forgotten():
    base = [TaskResult("arith", "accuracy", 0.2, 0.1, 10, 1.0), TaskResult("source-ppl", "perplexity", 10.0, 0.1, 99, 1.0, "source", False)]
    tuned = [TaskResult("arith", "accuracy", 0.5, 0.1, 10, 1.0), TaskResult("source-ppl", "perplexity", 12.5, 0.1, 99, 1.0, "source", False)]
    table = compare_table(base, tuned)
    learned, forgotten = table.split("FORGOTTEN")
    assert "LEARNED" in learned and "+0.3" in learned and "better" in learned
    assert "+2.5" in forgotten and "worse" in forgotten


def test_cli_baseline_compares_with_the_adapter_disabled(tiny_chat, tmp_path, capsys):
    import torch

    model, _ = tiny_chat
    adapter = tmp_path / "adapter"
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
        loralab.save_adapter(model, adapter)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.zero_()
    out = tmp_path / "results.json"
    eval_main(["tiny-llama", "--adapter", str(adapter), "--tasks", "source-kl,source-ppl", "--limit", "1",
               "--baseline", "--out", str(out), "--no-progress"])  # fmt: skip
    records = {(r["variant"], r["metric"]): r["value"] for r in json.loads(out.read_text())}
    assert records[("adapter", "kl_to_base")] > 0 and records[("base", "kl_to_base")] == 0.0
    assert records[("adapter", "perplexity")] != records[("base", "perplexity")]
    printed = capsys.readouterr().out
    assert "FORGOTTEN (source domain)" in printed and "kl_to_base" in printed


def test_cli(tmp_path, capsys):
    out = tmp_path / "results.json"
    eval_main(["tiny-llama", "--tasks", "source-ppl", "--limit", "1", "--out", str(out), "--no-progress"])
    records = json.loads(out.read_text())
    assert records[0]["task"] == "source-ppl" and records[0]["variant"] == "model"
    assert "perplexity" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--adapter"):
        eval_main(["tiny-llama", "--tasks", "arith", "--baseline"])
    with pytest.raises(ConfigError, match="Unknown task"):
        eval_main(["tiny-llama", "--tasks", "arith,bogus"])


def test_documents_limits_text_tasks_apart_from_limit(tiny, char_tokenizer, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("One paragraph.\n\nTwo paragraphs.\n\nThree paragraphs here.\n")
    both = evaluate(tiny, char_tokenizer, [f"ppl:{text}"], limit=1, progress=False)
    few = evaluate(tiny, char_tokenizer, [f"ppl:{text}"], limit=1, documents=2, progress=False)
    every = evaluate(tiny, char_tokenizer, [f"ppl:{text}"], documents=3, progress=False)
    assert [r.details["documents"] for r in (both + few + every)] == [1, 2, 3]
    with pytest.raises(ConfigError, match="documents"):
        evaluate(tiny, char_tokenizer, [f"ppl:{text}"], documents=0, progress=False)


def test_cli_out_is_checked_before_work_and_saved_after_each_task(tmp_path, monkeypatch):
    from loralab.eval.tasks import code_task
    from loralab.outputs import OutputError

    with pytest.raises(OutputError, match="is a folder"):
        eval_main(["tiny-llama", "--tasks", "source-ppl", "--out", str(tmp_path)])
    out = tmp_path / "deep" / "results.json"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(code_task, "run_programs", interrupted)
    humaneval = Path(__file__).parents[1] / "data" / "fixtures" / "humaneval.jsonl"
    with pytest.raises(KeyboardInterrupt):
        eval_main(["tiny-llama", "--tasks", f"source-ppl,humaneval:{humaneval}", "--limit", "1", "--samples", "1",
                   "--max-new-tokens", "4", "--out", str(out), "--no-progress"])  # fmt: skip
    assert [record["task"] for record in json.loads(out.read_text())] == ["source-ppl"]


def test_a_hostile_test_row_cannot_stop_loralab_eval(tmp_path):
    """The row kills its parent and every process whose command line names loralab; eval still ends well."""
    import subprocess
    import sys

    killer = (
        "import posix\nfor pid in [posix.getppid()] + [int(p) for p in posix.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n        with open(f'/proc/{pid}/cmdline', 'rb') as handle:\n            named = b'loralab' in handle.read()\n"
        "    except OSError:\n        named = False\n"
        "    if named or pid == posix.getppid():\n        try:\n            posix.kill(pid, 9)\n        except OSError:\n            pass\n"
        "def check(candidate):\n    assert candidate(1) == 2\n"
    )
    rows = tmp_path / "hostile.jsonl"
    rows.write_text(json.dumps({"task_id": "H/0", "prompt": "def add_one(x):\n    '''x + 1'''\n", "canonical_solution": "    return x + 1\n",
                                "test": killer, "entry_point": "add_one"}) + "\n")  # fmt: skip
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "loralab", "eval", "tiny-llama", "--tasks", f"humaneval:{rows},source-ppl",
                           "--limit", "1", "--samples", "2", "--max-new-tokens", "4", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(out.read_text())
    assert {record["task"] for record in records} == {f"humaneval:{rows}", "source-ppl"}
