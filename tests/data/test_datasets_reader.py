"""Hugging Face ``datasets`` as a reader: files only it reads, globs, save_to_disk folders and hub names
from the local cache (offline), with loralab's row checks and locations; and what happens without it."""

import gzip
import json
import sys

import pytest

from loralab.data import ChatRecord, InstructionRecord, Message, TextRecord, load_records
from loralab.data.readers import check_source, read_rows
from loralab.errors import ConfigError, DataError

ROWS = [{"prompt": f"What is {i} + 1?", "response": f"{i + 1}."} for i in range(5)]


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    """datasets, with its own cache in tmp_path (never the user's)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    return datasets


def records_of(rows):
    return [InstructionRecord(row["prompt"], row["response"]) for row in rows]


# -- files -------------------------------------------------------------------------------------------


def test_glob_reads_matching_files_in_order_and_agrees_with_datasets(tmp_path, datasets):
    write_jsonl(tmp_path / "data" / "b.jsonl", ROWS[2:])
    write_jsonl(tmp_path / "data" / "a.jsonl", ROWS[:2])
    (tmp_path / "data" / "notes.md").write_text("not data")
    pattern = str(tmp_path / "data" / "*.jsonl")
    reference = datasets.load_dataset("json", data_files=sorted(str(p) for p in (tmp_path / "data").glob("*.jsonl")), split="train",
                                      cache_dir=str(tmp_path / "c"))  # fmt: skip
    assert load_records(pattern) == records_of(reference.to_list()) == records_of(ROWS)


def test_glob_locates_a_bad_row_in_its_own_file(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    write_jsonl(tmp_path / "b.jsonl", [ROWS[0], {"prompt": "p"}])
    with pytest.raises(DataError, match=r"b\.jsonl:2: missing field 'response'"):
        load_records(tmp_path / "*.jsonl")
    with pytest.raises(DataError, match=r"no data files match"):
        load_records(tmp_path / "*.parquet")


def test_text_files_through_datasets_one_record_per_line(tmp_path, datasets):
    lines = ["First line of prose.", "", "Third line, after a blank one."]
    plain = tmp_path / "d.txt"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    packed = tmp_path / "e.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = [TextRecord(line) for line in lines if line]
    assert load_records(plain) == expected == load_records(packed)
    assert [row.where for row in read_rows(plain)] == [f"{plain}:1", f"{plain}:3"]  # lines, as datasets numbers rows


def test_tsv_through_datasets_keeps_row_checks_and_numbers(tmp_path, datasets):
    path = tmp_path / "d.tsv"
    path.write_text("prompt\tresponse\nWhat is 1 + 1?\t2.\nWhat is 2 + 2?\t\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.tsv: row 2: field 'response' is (empty|null)"):
        load_records(path)
    path.write_text("prompt\tresponse\nWhat is 1 + 1?\t2.\n", encoding="utf-8")
    assert load_records(path) == [InstructionRecord("What is 1 + 1?", "2.")]


def test_unreadable_file_is_one_line(tmp_path, datasets):
    path = tmp_path / "d.arrow"
    path.write_bytes(b"not arrow at all")
    with pytest.raises(DataError) as caught:
        load_records(path)
    assert str(caught.value).startswith(f"{path}: datasets could not read it as arrow") and "\n" not in str(caught.value)


def test_save_to_disk_dataset_dict_gives_its_train_split(tmp_path, datasets):
    chat = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": f"Hello {i}"}]} for i in range(3)]
    splits = datasets.DatasetDict({"test": datasets.Dataset.from_list(chat[:1]), "train": datasets.Dataset.from_list(chat[1:])})
    splits.save_to_disk(str(tmp_path / "saved"))
    expected = [ChatRecord((Message("user", "Hi"), Message("assistant", f"Hello {i}"))) for i in (1, 2)]
    assert load_records(tmp_path / "saved") == expected
    assert [row.where for row in read_rows(tmp_path / "saved")] == [f"{tmp_path / 'saved'}[train]: row {n}" for n in (1, 2)]
    arrow_files = sorted((tmp_path / "saved").glob("*/data-*.arrow"))  # test/..., train/...: read by datasets' arrow builder
    assert len(arrow_files) == 2 and load_records(arrow_files[1]) == expected
    assert load_records(tmp_path / "saved" / "*" / "data-*.arrow") == [ChatRecord((Message("user", "Hi"), Message("assistant", "Hello 0")))] + expected


# -- hub names, offline ----------------------------------------------------------------------------------


def fake_hub_dataset(cache, repo: str, files: dict[str, list]) -> None:
    """A dataset repository as the hub cache lays one out after a download (no network involved)."""
    folder = cache / f"datasets--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    for name, rows in files.items():
        write_jsonl(folder / "snapshots" / "0123abcd" / name, rows)


def test_hub_name_not_cached_is_one_clear_line(tmp_path, datasets, monkeypatch):
    name = "loralab-tests/never-downloaded"
    with pytest.raises(DataError) as caught:
        load_records(name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: no such file or folder, and no Hugging Face dataset '{name}' in the local caches")
    assert f"datasets.load_dataset('{name}')" in message and str(tmp_path / "datasets-cache") in message
    with pytest.raises(DataError, match="no Hugging Face dataset"):
        check_source(name)  # the check before training says the same, without loading anything
    from loralab.train.recipe import DataConfig

    with pytest.raises(ConfigError, match=rf"^data\.path: {name}: no such file or folder, and no Hugging Face dataset"):
        DataConfig(path=name).check_environment()


def test_hub_name_from_the_hub_cache_offline(tmp_path, datasets, _private_hub_cache):
    offline = datasets.config.HF_HUB_OFFLINE
    repo = "loralab-tests/tiny-sums"
    fake_hub_dataset(_private_hub_cache, repo, {"data/train.jsonl": ROWS[:3], "data/test.jsonl": ROWS[3:]})
    assert load_records(repo) == records_of(ROWS[:3])
    assert load_records(f"{repo}[test]") == records_of(ROWS[3:])
    assert [row.where for row in read_rows(repo)] == [f"{repo}[train]: row {n}" for n in (1, 2, 3)]
    check_source(repo)  # cached: no error
    assert datasets.config.HF_HUB_OFFLINE == offline  # offline only while reading


def test_hub_rows_get_loralab_checks(tmp_path, datasets, _private_hub_cache):
    repo = "loralab-tests/bad-rows"
    fake_hub_dataset(_private_hub_cache, repo, {"train.jsonl": [ROWS[0], {"prompt": "p", "response": ""}]})
    with pytest.raises(DataError, match=rf"^{repo}\[train\]: row 2: field 'response' is empty"):
        load_records(repo)


# -- without datasets ------------------------------------------------------------------------------------


def test_without_datasets_own_readers_and_globs_work_and_others_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    assert load_records(tmp_path / "*.jsonl") == records_of(ROWS)
    (tmp_path / "d.txt").write_text("text\n")
    for source in (tmp_path / "d.txt", "someone/some-dataset"):
        with pytest.raises(DataError, match="needs the 'datasets' package, which is not installed: pip install datasets"):
            load_records(source)
    with pytest.raises(DataError, match="pip install datasets"):
        check_source("someone/some-dataset")
    with pytest.raises(DataError, match=r"no such file or folder\.$"):
        load_records(tmp_path / "absent.jsonl")  # a file name, never taken for a hub name
