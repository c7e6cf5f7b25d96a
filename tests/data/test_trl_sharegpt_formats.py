"""TRL's prompt-completion rows (text and conversational) and ShareGPT conversations: records, the exact
rendered text and which tokens are labelled, each worked out here from the format's definition."""

import csv
import json

import pytest
from labelled_runs import trained_runs

from loralab.data import (
    IGNORE_INDEX,
    ChatRecord,
    CompletionRecord,
    Message,
    build_dataset,
    load_records,
)
from loralab.errors import DataError

SHAREGPT_ROW = {
    "id": "a1",
    "conversations": [
        {"from": "system", "value": "You answer briefly."},
        {"from": "human", "value": "Capital of France?"},
        {"from": "gpt", "value": "Paris."},
        {"from": "human", "value": "And of Italy?"},
        {"from": "gpt", "value": "Rome."},
    ],
}
TRL_TEXT_ROW = {"prompt": "The sky is", "completion": " blue."}
TRL_CHAT_ROW = {
    "prompt": [
        {"role": "user", "content": "Pick a number."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "Double it."},
    ],
    "completion": [{"role": "assistant", "content": "Fourteen."}],
}


def write_jsonl(tmp_path, *rows, name="d.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def labelled_text(tokenizer, example) -> list[str]:
    """The decoded maximal runs of labelled tokens."""
    return [tokenizer.decode(run) for run in trained_runs(example)]


# -- records ----------------------------------------------------------------------------------------


def test_sharegpt_row_is_the_conversation_with_roles_mapped(tmp_path):
    (record,) = load_records(write_jsonl(tmp_path, SHAREGPT_ROW))
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    expected = tuple(Message(roles[m["from"]], m["value"]) for m in SHAREGPT_ROW["conversations"])
    assert record == ChatRecord(expected)


def test_trl_text_row_is_a_completion_record(tmp_path):
    assert load_records(write_jsonl(tmp_path, TRL_TEXT_ROW)) == [CompletionRecord("The sky is", " blue.")]


def test_trl_conversational_row_keeps_the_prompt_apart(tmp_path):
    (record,) = load_records(write_jsonl(tmp_path, TRL_CHAT_ROW))
    messages = tuple(Message(m["role"], m["content"]) for m in TRL_CHAT_ROW["prompt"] + TRL_CHAT_ROW["completion"])
    assert record == ChatRecord(messages, prompt_messages=3)


def test_csv_cells_hold_json_conversations_and_message_lists(tmp_path):
    path = tmp_path / "d.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversations"])
        writer.writerow([json.dumps(SHAREGPT_ROW["conversations"])])
    (record,) = load_records(path)
    assert record.messages[2] == Message("assistant", "Paris.")
    path = tmp_path / "c.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "completion"])
        writer.writerow([json.dumps(TRL_CHAT_ROW["prompt"]), json.dumps(TRL_CHAT_ROW["completion"])])
    assert load_records(path) == load_records(write_jsonl(tmp_path, TRL_CHAT_ROW))


# -- rendering and loss masks -------------------------------------------------------------------------


def test_sharegpt_renders_with_the_chat_template_and_trains_every_gpt_turn(smol_tokenizer):
    (example,) = build_dataset([SHAREGPT_ROW], smol_tokenizer)
    tok = smol_tokenizer
    text = (
        "<|im_start|>system\nYou answer briefly.<|im_end|>\n"
        "<|im_start|>user\nCapital of France?<|im_end|>\n"
        "<|im_start|>assistant\nParis.<|im_end|>\n"
        "<|im_start|>user\nAnd of Italy?<|im_end|>\n"
        "<|im_start|>assistant\nRome.<|im_end|>\n"
    )  # SmolLM2's ChatML, written out by hand
    assert tok.decode(example.input_ids) == text
    assert labelled_text(tok, example) == ["Paris.<|im_end|>", "Rome.<|im_end|>"]


def test_trl_text_row_is_prompt_then_completion_and_eos_with_no_template(smol_tokenizer):
    (example,) = build_dataset([TRL_TEXT_ROW], smol_tokenizer)
    tok = smol_tokenizer
    assert tok.decode(example.input_ids) == "The sky is blue.<|im_end|>"
    assert labelled_text(tok, example) == [" blue.<|im_end|>"]
    prompt_tokens = len(tok("The sky is", add_special_tokens=False)["input_ids"])
    assert example.labels[:prompt_tokens] == [IGNORE_INDEX] * prompt_tokens
    assert all(label != IGNORE_INDEX for label in example.labels[prompt_tokens:])


def test_trl_conversational_row_trains_only_the_completion(smol_tokenizer):
    (example,) = build_dataset([TRL_CHAT_ROW], smol_tokenizer)
    tok = smol_tokenizer
    system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    text = (
        system + "<|im_start|>user\nPick a number.<|im_end|>\n"
        "<|im_start|>assistant\nSeven.<|im_end|>\n"
        "<|im_start|>user\nDouble it.<|im_end|>\n"
        "<|im_start|>assistant\nFourteen.<|im_end|>\n"
    )  # the template's default system message, then the turns
    assert tok.decode(example.input_ids) == text
    assert labelled_text(tok, example) == ["Fourteen.<|im_end|>"]  # "Seven." is the prompt's: context
    as_chat = build_dataset([{"messages": TRL_CHAT_ROW["prompt"] + TRL_CHAT_ROW["completion"]}], tok)[0]
    assert labelled_text(tok, as_chat) == ["Seven.<|im_end|>", "Fourteen.<|im_end|>"]
    assert as_chat.input_ids == example.input_ids


def test_train_on_prompt_labels_every_token_of_a_completion_row(smol_tokenizer):
    (example,) = build_dataset([TRL_TEXT_ROW], smol_tokenizer, train_on_prompt=True)
    assert example.labels == example.input_ids


# -- errors name the line and say it in the row's words -------------------------------------------------


def sharegpt(*turns):
    return {"conversations": [{"from": who, "value": text} for who, text in turns]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (sharegpt(("bot", "hi"), ("gpt", "x")), "message 1 has from 'bot'. Use one of human, gpt, system."),
        (sharegpt(("gpt", "hi")), "message 1 has from 'gpt' where 'human' was expected"),
        (sharegpt(("human", "a"), ("human", "b")), "message 2 has from 'human' where 'gpt' was expected"),
        (sharegpt(("human", "a")), "no gpt turn"),
        (sharegpt(("human", "a"), ("gpt", "b"), ("human", "c")), "ends with a human turn that has no gpt reply"),
        (sharegpt(("human", "a"), ("gpt", " ")), "message 2 (gpt) has empty value"),
        ({"conversations": [{"role": "user", "content": "a"}]}, "message 1 has no 'from' field"),
        ({"conversations": []}, "'conversations' must be a non-empty list"),
        ({"prompt": "p", "completion": [{"role": "assistant", "content": "a"}]}, "'prompt' is a string but 'completion' is a list"),
        ({"prompt": "p", "completion": ""}, "field 'completion' is empty"),
        ({"prompt": "p", "completion": 3}, "'completion' is int"),
        ({"completion": "c"}, "missing field 'prompt'"),
        ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
          "completion": [{"role": "assistant", "content": "b"}]}, "field 'prompt': the last message is 'assistant'"),  # fmt: skip
        ({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "user", "content": "b"}]},
         "field 'completion': message 1 has role 'user'"),  # fmt: skip
        ({"prompt": [{"role": "user", "content": "q"}],
          "completion": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}, "ends with a user turn"),  # fmt: skip
    ],
)
def test_bad_rows_name_the_line_and_the_problem(tmp_path, row, message):
    good = TRL_TEXT_ROW if "completion" in row else SHAREGPT_ROW
    with pytest.raises(DataError) as caught:
        load_records(write_jsonl(tmp_path, good, row))
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'd.jsonl'}:2")
    assert message in text
    assert "\n" not in text


def test_one_format_per_file(tmp_path):
    with pytest.raises(DataError, match=r"d\.jsonl:2: this row is in sharegpt \(conversations\) format but .* completion"):
        load_records(write_jsonl(tmp_path, TRL_TEXT_ROW, SHAREGPT_ROW))
