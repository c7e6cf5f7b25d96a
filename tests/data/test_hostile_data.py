"""Hostile data files: JSON nested beyond the stack, lone UTF-16 surrogates, strings that are not UTF-8.
Each is a DataError naming the file and line (or row) and the field, never a stack trace or a crash
later in the tokenizer."""

import json
import re
from pathlib import Path

import pytest

from loralab.data import InstructionRecord, Message, load_records
from loralab.data.dataset import build_dataset
from loralab.data.readers.row import MAX_DEPTH
from loralab.errors import DataError

DEEP = "[" * 100_000
CHAT = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("deep.jsonl", '{"text": "ok"}\n{"text": ' + DEEP + "\n", "deep.jsonl:2"),
        ("deep.json", '[{"text": "ok"},\n' + DEEP, "deep.json:2 (item 2)"),
        ("deep.csv", 'messages\n"' + DEEP + '"\n', "deep.csv:2"),
        # decodes, but no data row nests like this
        ("nested.jsonl", '{"text": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}\n", "nested.jsonl:1"),
    ],
)
def test_json_nested_beyond_reason_is_a_data_error_naming_file_and_line(tmp_path, name, text, where):
    with pytest.raises(DataError, match=re.escape(f"{where}: the row is nested more than {MAX_DEPTH} levels deep")):
        load_records(write(tmp_path, name, text))


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("pair.jsonl", '{"prompt": "p", "response": "r"}\n{"prompt": "p", "response": "cut \\ud83d"}\n',
         r"pair\.jsonl:2: field 'response' holds a lone surrogate U\+D83D at character 4"),
        ("chat.json", json.dumps([{"messages": CHAT[:1] + [{"role": "assistant", "content": "\udc00"}]}]),
         r"chat\.json:1 \(item 1\): field 'messages\[1\]\.content' holds a lone surrogate U\+DC00"),
        ("chat.csv", 'messages\n"[{""role"": ""user"", ""content"": ""\\ud800""}]"\n',
         r"chat\.csv:2: field 'messages\[0\]\.content' holds a lone surrogate U\+D800"),
        ("key.jsonl", '{"text": "ok", "\\ud800": 1}\n', r"key\.jsonl:1: a field name holds a lone surrogate U\+D800"),
    ],
)
def test_a_lone_surrogate_is_a_data_error_naming_file_line_and_field(tmp_path, name, text, where):
    with pytest.raises(DataError, match=rf"{where}.*\(half of a UTF-16 pair, e\.g\. a cut emoji\), which is not text"):
        load_records(write(tmp_path, name, text))


def test_a_whole_surrogate_pair_is_an_emoji_and_loads(tmp_path):
    path = write(tmp_path, "emoji.jsonl", '{"prompt": "smile", "response": "\\ud83d\\ude00"}\n')
    assert load_records(path) == [InstructionRecord("smile", "\N{GRINNING FACE}")]


def test_in_memory_rows_are_checked_like_file_rows(smol_tokenizer):
    rows = [{"prompt": "p", "response": "r"}, {"messages": [{"role": "user", "content": "x\ud800"}, CHAT[1]]}]
    with pytest.raises(DataError, match=r"records\[1\]: field 'messages\[0\]\.content' holds a lone surrogate"):
        build_dataset(rows, smol_tokenizer)


def test_encoded_surrogate_bytes_are_not_utf8(tmp_path):
    """Text readers decode strictly, so a surrogate written as bytes (CESU-8) never becomes a string."""
    path = tmp_path / "cesu.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "\xed\xa0\x80"}\n')
    with pytest.raises(DataError, match=r"cesu\.jsonl:2: the file is not valid UTF-8"):
        load_records(path)


def test_a_parquet_string_that_is_not_utf8_names_its_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    good, bad = b"fine", b"\xed\xa0\x80 cut"  # pyarrow writes string columns without checking them
    offsets = pa.array([0, len(good), len(good) * 2, len(good) * 2 + len(bad)], type=pa.int32()).buffers()[1]
    text = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(good + good + bad)])
    path = tmp_path / "bad.parquet"
    parquet.write_table(pa.table({"text": text}), path)
    with pytest.raises(DataError, match=r"bad\.parquet: row 3: a string is not valid UTF-8"):
        load_records(path)


def test_ordinary_nested_rows_still_load(tmp_path):
    path = write(tmp_path, "chat.jsonl", json.dumps({"messages": CHAT, "meta": {"tags": [["a", ["b"]]]}}) + "\n")
    assert load_records(path)[0].messages == (Message("user", "hi"), Message("assistant", "hello"))
