"""Preference pairs: both row layouts from every file format, one-line errors naming the row, and the
tokenized pairs (prompt masked, answer labelled, shared prompt tokens, drops counted, DPO collator)."""

import copy
import csv
import json
from pathlib import Path

import pytest

from loralab.data import (
    IGNORE_INDEX,
    ChatRecord,
    InstructionRecord,
    Message,
    PreferenceRecord,
    build_dataset,
    build_preference_dataset,
    generation_prompt,
    load_preference_records,
    load_records,
)
from loralab.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures"
STRING_ROWS = [json.loads(line) for line in (FIXTURES / "preference.jsonl").read_text().splitlines()]
CHAT_ROWS = [json.loads(line) for line in (FIXTURES / "preference_chat.jsonl").read_text().splitlines()]


def expected_record(row: dict) -> PreferenceRecord:
    """The record a row must give, worked out here from the layout's definition."""
    if isinstance(row["chosen"], str):
        history = (Message("system", row["system"]),) if row.get("system") else ()
        return PreferenceRecord(row["prompt"], row["chosen"], row["rejected"], history)
    context = [Message(m["role"], m["content"]) for m in row["chosen"][:-1]]
    chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
    return PreferenceRecord(context[-1].content, chosen, rejected, tuple(context[:-1]))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8")
    return path


def write_json(path: Path, rows: list) -> Path:
    path.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n", encoding="utf-8")
    return path


def write_csv(path: Path, rows: list) -> Path:
    """One column per key; lists (the chat layout's conversations) as JSON cells."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: json.dumps(v) if isinstance(v, list) else v for key, v in row.items()})
    return path


def write_parquet(path: Path, rows: list) -> Path:
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    columns = list(dict.fromkeys(key for row in rows for key in row))  # from_pylist reads the first row's keys
    parquet.write_table(pyarrow.Table.from_pylist([{key: row.get(key) for key in columns} for row in rows]), path)
    return path


def write_hf_disk(path: Path, rows: list) -> Path:
    datasets = pytest.importorskip("datasets")
    columns = list(dict.fromkeys(key for row in rows for key in row))  # from_list reads the first row's keys
    datasets.Dataset.from_list([{key: row.get(key) for key in columns} for row in rows]).save_to_disk(str(path))
    return path


WRITERS = {
    "d.jsonl": write_jsonl,
    "d.json": write_json,
    "d.csv": write_csv,
    "d.parquet": write_parquet,
    "saved": write_hf_disk,
}


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITERS)
@pytest.mark.parametrize("rows", [STRING_ROWS, CHAT_ROWS], ids=["strings", "chat"])
def test_both_layouts_from_every_file_format(tmp_path, name, rows):
    path = WRITERS[name](tmp_path / name, rows)
    assert load_records(path) == [expected_record(row) for row in rows]


def test_fixtures_cover_what_they_should():
    records = [expected_record(row) for row in STRING_ROWS + CHAT_ROWS]
    assert any(r.history == (Message("system", "You answer in one word."),) for r in records)
    assert any(any(m.role == "assistant" for m in r.history) for r in records)  # a multi-turn context
    assert all("messages" in row for row in CHAT_ROWS)  # UltraFeedback rows carry 'messages' too: still pairs


def test_ultrafeedback_row_is_a_pair_not_a_chat():
    (record,) = load_preference_records([CHAT_ROWS[0]])
    spider = CHAT_ROWS[0]["prompt"]
    assert record == PreferenceRecord(spider, "A spider has eight legs.", "Spiders have six legs, like insects.")


def test_answers_that_only_look_like_lists_stay_text():
    row = {"prompt": "List three numbers.", "chosen": "[1, 2, 3]", "rejected": '[{"a": 1}]'}
    assert load_preference_records([row]) == [PreferenceRecord(row["prompt"], row["chosen"], row["rejected"])]


def test_hand_built_records_and_rows_mix_and_are_validated():
    record = PreferenceRecord("p", "good", "bad", (Message("user", "u"), Message("assistant", "a")))
    assert load_preference_records([record, STRING_ROWS[0]]) == [record, expected_record(STRING_ROWS[0])]
    system_only = PreferenceRecord("p", "good", "bad", (Message("system", "s"),))
    assert load_preference_records([system_only]) == [system_only]
    with pytest.raises(DataError, match=r"^records\[1\]: 'chosen' and 'rejected' give the same answer"):
        load_preference_records([record, PreferenceRecord("p", "same", "same ")])


def test_other_formats_are_not_pairs():
    with pytest.raises(DataError, match=r"^records\[0\]: this row is in instruction format, not a preference pair"):
        load_preference_records([InstructionRecord("p", "r")])
    with pytest.raises(DataError, match=r"instructions\.jsonl:1: this row is in instruction format"):
        build_preference_dataset(FIXTURES / "instructions.jsonl", None)


def test_mixing_pairs_with_another_format_names_both_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [STRING_ROWS[0], {"prompt": "p", "response": "r"}])
    with pytest.raises(DataError, match=r"d\.jsonl:2: this row is in instruction .*d\.jsonl:1 is in preference"):
        load_records(path)


# -- errors -------------------------------------------------------------------------------------
GOOD = STRING_ROWS[0]


def chat(*turns):
    return [{"role": role, "content": content} for role, content in turns]


def pair(chosen, rejected, **extra):
    return {"prompt": "q", "chosen": chosen, "rejected": rejected, **extra}


U, A = ("user", "q"), ("assistant", "yes")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
        ({"prompt": "q", "rejected": "a"}, "missing field 'chosen'"),
        (pair("a", None), "field 'rejected' is null"),
        (pair(" ", "a"), "field 'chosen' is empty"),
        (pair([], chat(U, A)), "field 'chosen' is an empty list"),
        ({"chosen": "a", "rejected": "b"}, "missing field 'prompt'"),
        (pair("same", "same"), "'chosen' and 'rejected' give the same answer"),
        (pair(" same\n", "same"), "'chosen' and 'rejected' give the same answer"),
        (pair(chat(U, A), chat(U, A)), "'chosen' and 'rejected' give the same answer"),
        (pair(chat(U, A), chat(("user", "other"), ("assistant", "no"))), "differ at message 1, before their last"),
        (pair(chat(("system", "s"), U, A), chat(U, ("assistant", "no"))), "differ at message 1"),
        (pair(chat(U, ("assistant", "hi"), U, A), chat(U, ("assistant", "no"))), "differ at message 2"),
        (pair(chat(U, A, U), chat(U, A, U)), "field 'chosen': the conversation ends with a user turn"),
        (pair(chat(U, A), chat(U)), "field 'rejected': the conversation has no assistant turn"),
        (pair(chat(U, A), chat(("assistant", "no"))), "field 'rejected': message 1 has role 'assistant' where 'user'"),
        (pair(chat(U, A), [{"role": "assistant"}]), "field 'rejected': message 1 has no 'content'"),
        (pair(chat(U, A), chat(U, ("assistant", " "))), "field 'rejected': message 2 (assistant) has empty content"),
        (pair(7, "a"), "field 'chosen' must be a string or a list of {role, content} messages, got int"),
        (pair("a", {"text": "b"}), "field 'rejected' must be a string or a list of {role, content} messages, got dict"),
        (pair("a", chat(U, A)), "'chosen' is a string but 'rejected' is a list of messages"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "field 'prompt' must be a string, got int"),
        (pair(chat(U, A), chat(U, ("assistant", "no")), prompt=["q"]), "field 'prompt' must be a string, got list"),
        (pair("a", "b", system=5), "field 'system' must be a string, got int"),
        (pair(chat(U, A), chat(U, ("assistant", "no")), system="s"), "field 'system' is for string rows"),
        (pair('[{"role": "user", "content": "q"}', "b"), "field 'chosen' looks like a JSON list of messages but is not"),
    ],
)
def test_bad_row_is_one_line_naming_file_line_and_problem(tmp_path, row, message):
    with pytest.raises(DataError) as caught:
        load_records(write_jsonl(tmp_path / "d.jsonl", [GOOD, row]))
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'd.jsonl'}:2: ")
    assert message in text
    assert "\n" not in text


def test_csv_and_parquet_errors_name_their_line_and_row(tmp_path):
    bad_context = pair(chat(U, A), chat(("user", "other"), ("assistant", "no")), messages=chat(U, A))
    with pytest.raises(DataError, match=r"d\.csv:4: 'chosen' and 'rejected' differ at message 1"):
        load_records(write_csv(tmp_path / "d.csv", [CHAT_ROWS[0], CHAT_ROWS[1], bad_context]))
    with pytest.raises(DataError, match=r"d\.parquet: row 2: 'chosen' and 'rejected' give the same answer"):
        load_records(write_parquet(tmp_path / "d.parquet", [GOOD, pair("x", "x")]))


def test_csv_cell_with_a_lone_surrogate_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    cell = r'"[{""role"": ""user"", ""content"": ""q""}, {""role"": ""assistant"", ""content"": ""\ud800""}]"'
    path.write_text(f"prompt,chosen,rejected\nq,{cell},{cell}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv:2: field 'chosen\[1\]\.content' holds a lone surrogate U\+D800"):
        load_records(path)


# -- tokenized pairs ----------------------------------------------------------------------------


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def trained(example) -> list[int]:
    return [token for token, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]


def context_ids(tokenizer, record: PreferenceRecord) -> list[int]:
    """The prompt as the model sees it at inference, tokenized on its own."""
    if not record.history:
        return ids(tokenizer, generation_prompt(tokenizer, record.prompt))
    messages = [m.as_dict() for m in (*record.history, Message("user", record.prompt))]
    return ids(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


@pytest.mark.parametrize("rows", [STRING_ROWS, CHAT_ROWS], ids=["strings", "chat"])
def test_prompt_is_masked_and_the_answer_alone_is_labelled(smol_tokenizer, rows):
    records = [expected_record(row) for row in rows]
    dataset = build_preference_dataset(rows, smol_tokenizer)
    assert len(dataset) == len(records) == dataset.stats.pairs
    end = smol_tokenizer.eos_token
    for record, item in zip(records, dataset):
        prompt = context_ids(smol_tokenizer, record)
        for side in ("chosen", "rejected"):
            example, answer = item[side], getattr(record, side)
            full = smol_tokenizer.apply_chat_template([m.as_dict() for m in record.conversation(answer)], tokenize=False)
            assert example.input_ids == ids(smol_tokenizer, full)
            assert example.input_ids[: len(prompt)] == prompt
            assert example.labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt)
            labelled = [i for i, label in enumerate(example.labels) if label != IGNORE_INDEX]
            assert labelled == list(range(len(prompt), labelled[-1] + 1))  # one run, right after the prompt
            assert [example.labels[i] for i in labelled] == [example.input_ids[i] for i in labelled]
            assert smol_tokenizer.decode(trained(example)) == answer + end
        assert item["chosen"].input_ids[: len(prompt)] == item["rejected"].input_ids[: len(prompt)]


@pytest.mark.parametrize("record", [expected_record(STRING_ROWS[0]), expected_record(STRING_ROWS[2])])
def test_each_side_is_exactly_the_instruction_or_chat_rendering(smol_tokenizer, record):
    item = build_preference_dataset([record], smol_tokenizer)[0]
    for side in ("chosen", "rejected"):
        answer = getattr(record, side)
        single = InstructionRecord(record.prompt, answer) if not record.history else ChatRecord(record.conversation(answer))
        (reference,) = build_dataset([single], smol_tokenizer)
        assert (item[side].input_ids, item[side].labels) == (reference.input_ids, reference.labels)


def test_earlier_assistant_turns_are_context(smol_tokenizer):
    record = expected_record(CHAT_ROWS[2])
    assert record.history[-1] == Message("assistant", "Hello!")
    item = build_preference_dataset([record], smol_tokenizer)[0]
    (as_chat,) = build_dataset([ChatRecord(record.conversation(record.chosen))], smol_tokenizer)
    assert item["chosen"].input_ids == as_chat.input_ids
    assert smol_tokenizer.decode(trained(as_chat)) == "Hello!<|im_end|>42.<|im_end|>"  # chat trains both turns
    assert smol_tokenizer.decode(trained(item["chosen"])) == "42.<|im_end|>"


def test_tokenizer_without_chat_template_uses_the_plain_prompt(smol_tokenizer):
    plain = copy.deepcopy(smol_tokenizer)
    plain.chat_template = None
    item = build_preference_dataset([PreferenceRecord("Question?", "Right.", "Wrong.")], plain)[0]
    prompt = ids(plain, "Question?\n")
    for side, answer in (("chosen", "Right."), ("rejected", "Wrong.")):
        assert plain.decode(item[side].input_ids) == f"Question?\n{answer}{plain.eos_token}"
        assert item[side].labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt)
        assert plain.decode(trained(item[side])) == answer + plain.eos_token
    with pytest.raises(DataError, match="chat template"):
        build_preference_dataset([expected_record(CHAT_ROWS[2])], plain)


LONG = " ".join(["The river runs to the sea."] * 15)
PAIRS = [
    PreferenceRecord("Short question?", "Short answer.", "Wrong answer."),
    PreferenceRecord("Tell me about rivers.", "Rivers flow.", LONG),  # rejected is long: truncated, kept
    PreferenceRecord(" ".join(["This prompt is very long."] * 20), "Cut off.", "Also cut."),  # dropped
    PreferenceRecord("Lakes?", LONG, "No."),
]


def first_trained(example) -> int:
    return next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)


@pytest.mark.parametrize("max_length", [45, 70])
def test_truncation_and_drops_match_a_recomputation(smol_tokenizer, max_length):
    full = build_preference_dataset(PAIRS, smol_tokenizer, max_length=100_000)
    assert full.stats.truncated == full.stats.dropped == full.stats.truncated_tokens == 0
    sides = ("chosen", "rejected")
    kept = [p for p in full if all(first_trained(p[s]) < max_length for s in sides)]
    expected_cut = sum(max(0, len(p[s]) - max_length) for p in full for s in sides)
    expected_truncated = sum(any(len(p[s]) > max_length for s in sides) for p in kept)
    assert 0 < len(kept) < len(full) and expected_truncated > 0  # the cases this test is about occur

    cut = build_preference_dataset(PAIRS, smol_tokenizer, max_length=max_length)
    assert cut.stats.records == len(PAIRS)
    assert cut.stats.dropped == len(full) - len(kept)
    assert cut.stats.truncated == expected_truncated
    assert cut.stats.truncated_tokens == expected_cut
    assert cut.stats.pairs == len(cut) == len(kept) and cut.stats.examples == 2 * len(kept)
    for short, long in zip(cut, kept):
        for side in sides:
            assert short[side].input_ids == long[side].input_ids[:max_length]
            assert short[side].labels == long[side].labels[:max_length]
    assert cut.stats.tokens == sum(len(p[s]) for p in cut for s in sides)
    assert cut.stats.trained_tokens == sum(label != IGNORE_INDEX for p in cut for s in sides for label in p[s].labels)
    assert f"{len(kept)} pairs" in cut.stats.summary() and f"{cut.stats.dropped} dropped" in cut.stats.summary()


def test_nothing_left_names_max_length(smol_tokenizer):
    with pytest.raises(DataError, match="No usable preference pairs: all 1 were dropped because max_length=20"):
        build_preference_dataset(PAIRS[2:3], smol_tokenizer, max_length=20)


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_bad_max_length(smol_tokenizer, value):
    with pytest.raises(ConfigError, match="max_length"):
        build_preference_dataset(PAIRS, smol_tokenizer, max_length=value)


def test_dpo_collator_stacks_chosen_rows_then_rejected_rows(smol_tokenizer):
    from loralab.train.objectives.dpo import PreferenceObjective

    dataset = build_preference_dataset(STRING_ROWS + CHAT_ROWS, smol_tokenizer)
    items = [dataset[i] for i in range(len(dataset))]
    batch = PreferenceObjective().collator(smol_tokenizer)(items)
    rows = [item["chosen"] for item in items] + [item["rejected"] for item in items]
    assert batch["input_ids"].shape == (2 * len(items), max(len(r) for r in rows))
    for index, row in enumerate(rows):
        n = len(row)
        assert batch["input_ids"][index, :n].tolist() == row.input_ids
        assert batch["labels"][index, :n].tolist() == row.labels
        assert batch["attention_mask"][index].sum().item() == n
        assert set(batch["labels"][index, n:].tolist()) <= {IGNORE_INDEX}
