"""The training set of a recipe: a built-in task's training split or a data file, tokenized."""

from __future__ import annotations

from typing import Any

from loralab.data import PreferenceDataset, build_dataset, build_preference_dataset
from loralab.data.dataset import TokenizedDataset
from loralab.data.records import PreferenceRecord, TextRecord
from loralab.errors import DataError
from loralab.train.recipe import DataConfig

#: training examples drawn from a built-in task when ``examples`` is not given
DEFAULT_TASK_EXAMPLES = 2000


def training_records(config: DataConfig, seed: int) -> list[Any]:
    """Records of the training split (a task's ``train`` items) or of the data file."""
    if config.task is not None:
        from loralab.data.tasks import get_task

        task = get_task(config.task, **config.task_options)
        wanted = config.examples
        if config.task == "source-text":
            items = task.train(wanted, seed)
        else:
            items = task.train(wanted or DEFAULT_TASK_EXAMPLES, seed)
        return [task.to_record(item) for item in items]
    from loralab.data import load_records

    records = load_records(config.path)
    return records[: config.examples] if config.examples else records


def training_set(config: DataConfig, tokenizer: Any, seed: int) -> TokenizedDataset | PreferenceDataset:
    """Tokenized examples: response-only labels (instruction), packed blocks (pretraining) or
    chosen/rejected pairs (preference)."""
    records = training_records(config, seed)
    where = config.task or config.path
    kind = _kind(records[0]) if records else "instruction"
    if kind != config.regime:
        fix = {"pretraining": "raw text", "preference": "preference pairs", "instruction": "instruction records"}
        raise DataError(f"data.regime is {config.regime} but {where} holds {fix[kind]}: set data.regime: {kind}")
    if config.regime == "pretraining":
        dataset = build_dataset(records, tokenizer, max_length=config.block_size, block_size=config.block_size)
    elif config.regime == "preference":
        dataset = build_preference_dataset(records, tokenizer, max_length=config.max_length)
    else:
        dataset = build_dataset(records, tokenizer, max_length=config.max_length, train_on_prompt=config.train_on_prompt)
    if len(dataset) == 0:
        raise DataError(f"no training examples left from {where} (all too long or empty?)")
    return dataset


def _kind(record: Any) -> str:
    """The regime a record belongs to."""
    if isinstance(record, TextRecord):
        return "pretraining"
    return "preference" if isinstance(record, PreferenceRecord) else "instruction"
