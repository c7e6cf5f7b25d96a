"""Reading data files: formats detected by keys, readers chosen by extension, clear errors."""

import json
import sys
from pathlib import Path

import pytest

from loralab.data import ChatRecord, InstructionRecord, Message, TextRecord, load_records
from loralab.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def test_instruction_jsonl_skips_blank_lines_and_extra_keys():
    rows = [json.loads(line) for line in (FIXTURES / "instructions.jsonl").read_text().splitlines() if line.strip()]
    assert load_records(FIXTURES / "instructions.jsonl") == [InstructionRecord(r["prompt"], r["response"]) for r in rows]


def test_alpaca_json_list_joins_instruction_and_input():
    rows = json.loads((FIXTURES / "alpaca.json").read_text())
    expected = [
        InstructionRecord(r["instruction"] + ("\n\n" + r["input"] if r["input"] else ""), r["output"]) for r in rows
    ]
    assert load_records(FIXTURES / "alpaca.json") == expected
    assert expected[1].prompt == rows[1]["instruction"]  # empty input adds nothing


def test_chat_jsonl_keeps_every_message_in_order():
    rows = [json.loads(line) for line in (FIXTURES / "chat.jsonl").read_text().splitlines()]
    records = load_records(FIXTURES / "chat.jsonl")
    assert records == [ChatRecord(tuple(Message(m["role"], m["content"]) for m in r["messages"])) for r in rows]


def test_csv_with_quoted_multiline_cells_and_numbers_as_text():
    records = load_records(FIXTURES / "instructions.csv")
    assert records == [
        InstructionRecord("Name a fruit.", "An apple."),
        InstructionRecord("Write two lines.", "Line one,\nline two."),
        InstructionRecord("What is 3 * 3?", "9"),
    ]


def test_csv_messages_cell_is_parsed_as_json():
    assert load_records(FIXTURES / "chat.csv") == [ChatRecord((Message("user", "Hi"), Message("assistant", "Hello")))]


def test_text_records():
    texts = [json.loads(line)["text"] for line in (FIXTURES / "text.jsonl").read_text().splitlines()]
    assert load_records(FIXTURES / "text.jsonl") == [TextRecord(text) for text in texts]


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"prompt": "a", "response": "b"}, "", '{"prompt": "c", "response": }'))
    with pytest.raises(DataError, match=r"d\.jsonl:3: invalid JSON"):
        load_records(path)


def test_malformed_json_list_names_line(tmp_path):
    path = write(tmp_path, "d.json", '[\n  {"text": "a"},\n  {"text": "b",}\n]\n')
    with pytest.raises(DataError, match=r"d\.json:3: invalid JSON"):
        load_records(path)


def test_json_object_instead_of_list(tmp_path):
    with pytest.raises(DataError, match="list of objects"):
        load_records(write(tmp_path, "d.json", '{"text": "a"}'))


GOOD_CHAT = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
GOOD_PAIR = {"prompt": "p", "response": "r"}


def chat(*turns):
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD_PAIR, {"prompt": "only a prompt"}], "missing field 'response'"),
        ([GOOD_PAIR, {"prompt": "  ", "response": "x"}], "field 'prompt' is empty"),
        ([GOOD_PAIR, {"prompt": "p", "response": 42}], "field 'response' must be a string, got int"),
        ([GOOD_PAIR, {"prompt": "p", "response": None}], "field 'response' is null"),
        ([{"instruction": "i", "output": "o"}, {"instruction": "i", "input": "x"}], "missing field 'output'"),
        ([{"text": "t"}, {"text": ""}], "field 'text' is empty"),
        ([GOOD_PAIR, {"question": "q", "answer": "a"}], "no known format"),
        ([GOOD_CHAT, {"messages": []}], "non-empty list"),
        ([GOOD_CHAT, {"messages": "hi"}], "non-empty list"),
        ([GOOD_CHAT, chat(("user", "hi"))], "no assistant turn"),
        ([GOOD_CHAT, chat(("system", "s"), ("user", "hi"))], "no assistant turn"),
        ([GOOD_CHAT, chat(("assistant", "hi"))], "message 1 has role 'assistant' where 'user'"),
        ([GOOD_CHAT, chat(("user", "a"), ("user", "b"))], "message 2 has role 'user' where 'assistant'"),
        ([GOOD_CHAT, chat(("user", "a"), ("assistant", "b"), ("user", "c"))], "ends with a user turn"),
        ([GOOD_CHAT, chat(("user", "a"), ("system", "s"), ("assistant", "b"))], "message 2 has role 'system'"),
        ([GOOD_CHAT, chat(("robot", "a"), ("assistant", "b"))], "message 1 has role 'robot'"),
        ([GOOD_CHAT, {"messages": [{"role": "user"}]}], "message 1 has no 'content'"),
        ([GOOD_CHAT, {"messages": ["hi"]}], "message 1 must be an object"),
        ([GOOD_CHAT, chat(("user", "a"), ("assistant", " "))], "message 2 (assistant) has empty content"),
        ([GOOD_CHAT, {"messages": [{"role": "user", "content": 5}]}], "content must be a string"),
    ],
)
def test_bad_row_names_file_line_and_problem(tmp_path, rows, message):
    with pytest.raises(DataError) as caught:
        load_records(write(tmp_path, "d.jsonl", jsonl(*rows)))
    assert str(caught.value).startswith(f"{tmp_path / 'd.jsonl'}:2: ")
    assert message in str(caught.value)


def test_non_object_line(tmp_path):
    with pytest.raises(DataError, match=r"d\.jsonl:1: expected a JSON object"):
        load_records(write(tmp_path, "d.jsonl", "[1, 2]\n"))


def test_mixed_formats_name_both_rows_and_formats(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"prompt": "p", "response": "r"}, {"text": "t"}))
    with pytest.raises(DataError) as caught:
        load_records(path)
    message = str(caught.value)
    assert "d.jsonl:2:" in message and "d.jsonl:1" in message
    assert "text" in message and "instruction" in message


def test_alpaca_and_prompt_response_rows_count_as_mixed(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl({"instruction": "i", "output": "o"}, {"prompt": "p", "response": "r"}))
    with pytest.raises(DataError, match="alpaca"):
        load_records(path)


@pytest.mark.parametrize(("name", "text"), [("d.jsonl", ""), ("d.jsonl", "\n \n"), ("d.json", "[]"), ("d.csv", "prompt,response\n")])
def test_file_without_rows(tmp_path, name, text):
    with pytest.raises(DataError, match="no rows found"):
        load_records(write(tmp_path, name, text))


def test_unknown_extension_lists_supported(tmp_path):
    with pytest.raises(DataError, match=r"unknown data file extension '\.docx'.*\.jsonl"):
        load_records(write(tmp_path, "d.docx", "hello"))  # .txt is read when datasets is installed


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "absent.jsonl")


def test_not_utf8(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: the file is not valid UTF-8"):
        load_records(path)


def test_csv_row_with_wrong_cell_count(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv:3: 3 cells but the header has 2"):
        load_records(write(tmp_path, "d.csv", "prompt,response\na,b\nc,d,e\n"))
    with pytest.raises(DataError, match=r"d\.csv:5: 3 cells"):  # a quoted cell spans lines 2-3; line 4 is blank
        load_records(write(tmp_path, "d.csv", 'prompt,response\n"a\nb",c\n\nd,e,f\n'))


def test_csv_bad_messages_cell(tmp_path):
    with pytest.raises(DataError, match=r"d\.csv:2: the 'messages' cell is not valid JSON"):
        load_records(write(tmp_path, "d.csv", "messages\nnot json\n"))


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match="pip install pyarrow"):
        load_records(write(tmp_path, "d.parquet", "not really parquet"))


def test_hf_dataset_folder_without_datasets_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "dataset_info.json").write_text("{}")
    with pytest.raises(DataError, match="pip install datasets"):
        load_records(folder)


def test_plain_folder_is_rejected(tmp_path):
    with pytest.raises(DataError, match="not a saved Hugging Face dataset"):
        load_records(tmp_path)


def test_parquet_round_trip_when_pyarrow_is_installed(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    parquet.write_table(pyarrow.table({"prompt": ["p1", "p2"], "response": ["r1", "r2"]}), tmp_path / "d.parquet")
    assert load_records(tmp_path / "d.parquet") == [InstructionRecord("p1", "r1"), InstructionRecord("p2", "r2")]
