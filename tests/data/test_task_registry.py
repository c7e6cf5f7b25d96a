"""get_task by name; unknown names and options give clear errors."""

import pytest

from loralab.data import InstructionRecord, TextRecord, build_dataset
from loralab.data.tasks import TASKS, get_task
from loralab.errors import DataError


def test_names():
    assert set(TASKS) == {"arith", "arith-preference", "pycode", "source-text"}
    for name in TASKS:
        assert get_task(name).name == name


def test_options_are_passed():
    assert get_task("arith", level=3).train(1)[0].level == 3


def test_unknown_task_lists_known_names():
    with pytest.raises(DataError, match="Unknown task 'gsm9k'. Known tasks: arith, arith-preference, pycode, source-text"):
        get_task("gsm9k")


def test_unknown_option():
    with pytest.raises(DataError, match="does not accept"):
        get_task("pycode", level=2)


@pytest.mark.parametrize(("name", "record_type"), [("arith", InstructionRecord), ("pycode", InstructionRecord), ("source-text", TextRecord)])
def test_records_build_into_datasets(smol_tokenizer, name, record_type):
    task = get_task(name)
    records = [task.to_record(item) for item in task.train(8, seed=0)]
    assert all(isinstance(record, record_type) for record in records)
    dataset = build_dataset(records, smol_tokenizer, max_length=256)
    assert len(dataset) > 0 and dataset.stats.trained_tokens > 0
