"""Dynamic padding: tensors of shape (batch, longest), pad id, -100 labels, attention mask."""

import pytest
import torch

from loralab.data import IGNORE_INDEX, InstructionRecord, PaddingCollator, TextRecord, TokenizedExample, build_dataset
from loralab.errors import DataError


def test_pads_to_longest_on_the_right():
    batch = [TokenizedExample([5, 6, 7], [-100, 6, 7]), TokenizedExample([8], [8]), {"input_ids": [1, 2], "labels": [1, -100]}]
    out = PaddingCollator(pad_id=99)(batch)
    assert set(out) == {"input_ids", "attention_mask", "labels"}
    for tensor in out.values():
        assert tensor.shape == (3, 3) and tensor.dtype == torch.long
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 99, 99], [1, 2, 99]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100], [1, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


def test_pad_to_multiple_of():
    out = PaddingCollator(pad_id=0, pad_to_multiple_of=8)([TokenizedExample([1] * 9, [1] * 9)])
    assert out["input_ids"].shape == (1, 16)
    assert out["attention_mask"].sum().item() == 9


def test_real_dataset_batch(smol_tokenizer):
    records = [InstructionRecord("Hi?", "Hello."), InstructionRecord("A longer question here?", "A longer answer, too.")]
    dataset = build_dataset(records, smol_tokenizer)
    collator = PaddingCollator.for_tokenizer(smol_tokenizer)
    assert collator.pad_id == smol_tokenizer.pad_token_id
    out = collator(list(dataset))
    lengths = [len(example) for example in dataset]
    assert out["input_ids"].shape == (2, max(lengths))
    assert out["attention_mask"].sum(dim=1).tolist() == lengths
    for row, example in enumerate(dataset):
        assert out["input_ids"][row, : len(example)].tolist() == example.input_ids
        assert out["labels"][row, : len(example)].tolist() == example.labels
        assert (out["labels"][row, len(example) :] == IGNORE_INDEX).all()


def test_packed_blocks_need_no_padding(smol_tokenizer):
    dataset = build_dataset([TextRecord("one two three " * 40)], smol_tokenizer, block_size=16)
    out = PaddingCollator.for_tokenizer(smol_tokenizer)(list(dataset))
    assert out["attention_mask"].all()
    assert torch.equal(out["labels"], out["input_ids"])


def test_works_with_a_torch_dataloader(smol_tokenizer):
    dataset = build_dataset([InstructionRecord(f"Q{i}?", f"A{i}.") for i in range(5)], smol_tokenizer)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=PaddingCollator.for_tokenizer(smol_tokenizer))
    assert [batch["input_ids"].shape[0] for batch in loader] == [2, 2, 1]


def test_bad_batches():
    collator = PaddingCollator(pad_id=0)
    with pytest.raises(DataError, match="empty batch"):
        collator([])
    with pytest.raises(DataError, match="must match"):
        collator([TokenizedExample([1, 2], [1])])
