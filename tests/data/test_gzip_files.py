"""Gzip-compressed data files (``.jsonl.gz``, ``.csv.gz``, ``.json.gz``) read as their uncompressed selves."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from loralab.data.readers import read_rows
from loralab.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["humaneval.jsonl", "text.jsonl"])
def test_compressed_rows_equal_the_plain_file(tmp_path, name):
    packed = tmp_path / f"{name}.gz"
    packed.write_bytes(gzip.compress((FIXTURES / name).read_bytes()))
    plain = read_rows(FIXTURES / name)
    rows = read_rows(packed)
    assert [row.fields for row in rows] == [row.fields for row in plain] and len(rows) > 0
    assert rows[0].where == f"{packed}:1"  # line numbers are those of the decompressed text


def test_compressed_csv_and_json(tmp_path):
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress("prompt,response\nhi,there\n".encode()))
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b'[{"prompt": "hi", "response": "there"}]'))
    assert [row.fields for row in read_rows(tmp_path / "a.csv.gz")] == [{"prompt": "hi", "response": "there"}]
    assert [row.fields for row in read_rows(tmp_path / "a.json.gz")] == [{"prompt": "hi", "response": "there"}]


def test_bad_compressed_files(tmp_path):
    (tmp_path / "a.parquet.gz").write_bytes(gzip.compress(b"x"))
    with pytest.raises(DataError, match=r"'\.parquet\.gz'"):
        read_rows(tmp_path / "a.parquet.gz")
    (tmp_path / "b.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a complete gzip file"):
        read_rows(tmp_path / "b.jsonl.gz")
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b"\xff\xfe{}\n"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_rows(tmp_path / "c.jsonl.gz")
