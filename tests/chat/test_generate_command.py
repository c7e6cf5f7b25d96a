"""``loralab generate``: batched greedy completions equal transformers' generate; prompt files are checked line
by line (errors name the line) and every input before the model loads."""

from __future__ import annotations

import json

import pytest

from loralab.chat import generate_completions, prompt_record, read_prompts
from loralab.cli import main
from loralab.errors import DataError
from loralab.eval.generate import GenerationSettings

N = 8
ROWS = [
    {"prompt": "Hello there"},
    {"id": 7, "prompt": "A much longer prompt than the first one, to be padded against it"},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "What now?"}]},  # fmt: skip
    {"prompt": [{"role": "user", "content": "TRL's conversational prompt"}]},
]


def _conversation(row):
    value = row.get("messages", row.get("prompt"))
    return value if isinstance(value, list) else [{"role": "user", "content": value}]


def _write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8")
    return path


def test_batched_greedy_completions_equal_transformers_generate(tmp_path, tiny_adapted, greedy, chat_text):
    model, tokenizer = tiny_adapted
    records = read_prompts(_write_jsonl(tmp_path / "prompts.jsonl", ROWS))
    completions = generate_completions(model, tokenizer, records, GenerationSettings(max_new_tokens=N, batch_size=3))
    expected = [greedy(chat_text(_conversation(row)), N) for row in ROWS]
    assert completions == expected
    assert len(set(expected)) > 1


def test_raw_prompts_skip_the_chat_template(tiny_adapted, greedy):
    model, tokenizer = tiny_adapted
    records = [prompt_record({"prompt": "Once upon a time"}, "--prompt", raw=True)]
    assert generate_completions(model, tokenizer, records, GenerationSettings(max_new_tokens=N), raw=True) == [
        greedy("Once upon a time", N)
    ]


def test_the_command_writes_jsonl(tmp_path, adapter_dir, greedy, chat_text, capsys):
    prompts = _write_jsonl(tmp_path / "prompts.jsonl", ROWS)
    out = tmp_path / "out" / "completions.jsonl"
    argv = ["generate", "tiny-llama", "--adapter", str(adapter_dir), "--prompts", str(prompts), "--out", str(out),
            "--max-new-tokens", str(N), "--batch-size", "2"]  # fmt: skip
    assert main(argv) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in line.items() if k != "completion"} for line in lines] == ROWS  # the input, as given
    assert [line["completion"] for line in lines] == [greedy(chat_text(_conversation(row)), N) for row in ROWS]
    assert "wrote 5 completion(s)" in capsys.readouterr().err

    assert main(["generate", "tiny-llama", "--adapter", str(adapter_dir), "--prompt", "Hello there", "--max-new-tokens", str(N)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line == {"prompt": "Hello there", "completion": greedy(chat_text(_conversation(ROWS[0])), N)}


BAD_FILES = [
    (["{\"prompt\": \"ok\"}", "", "{\"prompt\": \"ok\"", "{\"prompt\": \"x\"}"], r"prompts\.jsonl:3: invalid JSON"),
    (["{\"prompt\": \"ok\"}", "{\"text\": \"no prompt\"}"], r"prompts\.jsonl:2: the line has neither 'prompt' nor 'messages'"),
    (["{\"prompt\": \"a\", \"messages\": []}"], r"prompts\.jsonl:1: the line has both"),
    (["{\"prompt\": \"ok\"}", "{\"prompt\": \"  \"}"], r"prompts\.jsonl:2: 'prompt' is empty"),
    (["{\"prompt\": 3}"], r"prompts\.jsonl:1: 'prompt' must be a string or a list of messages, got int"),
    (["[1, 2]"], r"prompts\.jsonl:1: expected a JSON object"),
    (["{\"prompt\": \"ok\"}"] * 3 + ["{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, "
                                     "{\"role\": \"assistant\", \"content\": \"Hello\"}]}"],
     r"prompts\.jsonl:4: the last message is 'assistant'"),  # fmt: skip
    (["{\"messages\": [{\"role\": \"robot\", \"content\": \"Hi\"}]}"], r"prompts\.jsonl:1: message 1 has role 'robot'"),
    (["{\"messages\": [{\"role\": \"user\"}]}"], r"prompts\.jsonl:1: message 1 has no 'content' field"),
    ([], r"holds no prompts"),
]


@pytest.mark.parametrize("lines, error", BAD_FILES)
def test_bad_prompt_lines_are_named_by_number(tmp_path, lines, error):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(DataError, match=error):
        read_prompts(path)


def test_raw_refuses_messages_naming_the_line(tmp_path):
    path = _write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "ok"}, ROWS[2]])
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: --raw takes plain text prompts"):
        read_prompts(path, raw=True)


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load a model fails the test: the error must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr("loralab.chat.source.load_choice", refuse)


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("loralab: error:") and "Traceback" not in err and err.count("\n") == 1
    return err


def test_mistakes_are_one_line_before_the_model_loads(tmp_path, adapter_dir, no_model_loads, capsys):
    good = _write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Hi"}])
    bad = _write_jsonl(tmp_path / "bad.jsonl", ["{\"prompt\": \"Hi\"}", "{oops"])
    base = ["generate", "tiny-llama", "--adapter", str(adapter_dir)]
    cases = [
        (base + ["--prompts", str(bad)], "bad.jsonl:2: invalid JSON"),
        (base + ["--prompts", str(tmp_path / "missing.jsonl")], "missing.jsonl does not exist"),
        (["generate", str(tmp_path / "no-model"), "--prompts", str(good)], "does not exist"),
        (["generate", "tiny-llama", "--adapter", str(tmp_path / "no-adapter"), "--prompt", "Hi"], "does not exist"),
        (base + ["--prompt", "Hi", "--out", str(tmp_path)], "is a folder; give a file name"),
        (base + ["--prompt", "Hi", "--out", str(good / "out.jsonl")], "the folder of --out"),
        (base + ["--prompt", "Hi", "--temperature", "-1"], "temperature must be >= 0"),
        (["chat", str(tmp_path / "no-model")], "does not exist"),
        (["chat", "tiny-llama", "--adapter", str(tmp_path / "no-adapter")], "does not exist"),
    ]
    for argv, says in cases:
        assert main(argv) == 2, argv
        assert says in _error(capsys), argv
