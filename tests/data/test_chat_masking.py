"""The loss mask lies exactly on assistant content and its end-of-turn token."""

import copy

import pytest
from labelled_runs import trained_runs

from loralab.data import IGNORE_INDEX, ChatRecord, InstructionRecord, Message, build_dataset, generation_prompt
from loralab.errors import DataError

CONVERSATION = ChatRecord(
    (
        Message("system", "You answer briefly."),
        Message("user", "Capital of France?"),
        Message("assistant", "Paris."),
        Message("user", "And of Italy?"),
        Message("assistant", "Rome, of course.\nIt is big."),
    )
)


def rendered(tokenizer, messages) -> str:
    return tokenizer.apply_chat_template([m.as_dict() for m in messages], tokenize=False)


def test_instruction_trains_on_response_and_end_of_turn_only(smol_tokenizer):
    record = InstructionRecord("What is 2 + 2?", "2 + 2 = 4.\n#### 4")
    (example,) = build_dataset([record], smol_tokenizer)
    runs = trained_runs(example)
    assert [smol_tokenizer.decode(run) for run in runs] == [record.response + smol_tokenizer.eos_token]
    messages = [Message("user", record.prompt), Message("assistant", record.response)]
    assert smol_tokenizer.decode(example.input_ids) == rendered(smol_tokenizer, messages)


def test_default_system_message_and_prompt_are_masked(smol_tokenizer):
    record = InstructionRecord("Say hi.", "Hi!")
    (example,) = build_dataset([record], smol_tokenizer)
    prompt = generation_prompt(smol_tokenizer, record.prompt)
    assert "system" in prompt  # SmolLM2's template inserted its default system message
    masked = [token for token, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX]
    assert smol_tokenizer.decode(masked).startswith(prompt)


def test_every_assistant_turn_of_a_multi_turn_chat_is_trained(smol_tokenizer):
    (example,) = build_dataset([CONVERSATION], smol_tokenizer)
    replies = [m.content + smol_tokenizer.eos_token for m in CONVERSATION.messages if m.role == "assistant"]
    assert [smol_tokenizer.decode(run) for run in trained_runs(example)] == replies
    full_text = rendered(smol_tokenizer, CONVERSATION.messages)
    assert example.input_ids == smol_tokenizer(full_text, add_special_tokens=False)["input_ids"]


def test_prompt_starts_the_training_sequence_exactly(smol_tokenizer):
    """What the model sees at inference is token-for-token the start of the training example."""
    record = InstructionRecord("Name a colour.", "Blue.")
    (example,) = build_dataset([record], smol_tokenizer)
    prompt_ids = smol_tokenizer(generation_prompt(smol_tokenizer, record.prompt), add_special_tokens=False)["input_ids"]
    assert example.input_ids[: len(prompt_ids)] == prompt_ids
    assert set(example.labels[: len(prompt_ids)]) == {IGNORE_INDEX}
    assert example.labels[len(prompt_ids)] != IGNORE_INDEX


def test_train_on_prompt_trains_every_token(smol_tokenizer):
    records = [CONVERSATION, ChatRecord((Message("user", "a"), Message("assistant", "b")))]
    dataset = build_dataset(records, smol_tokenizer, train_on_prompt=True)
    for example in dataset:
        assert example.labels == example.input_ids
    masked = build_dataset(records, smol_tokenizer)
    assert [e.input_ids for e in masked] == [e.input_ids for e in dataset]
    assert dataset.stats.trained_tokens == dataset.stats.tokens > masked.stats.trained_tokens


def test_tokenizer_without_chat_template_uses_plain_prompt(smol_tokenizer):
    plain = copy.deepcopy(smol_tokenizer)
    plain.chat_template = None
    (example,) = build_dataset([InstructionRecord("Question?", "Answer.")], plain)
    assert plain.decode(example.input_ids) == "Question?\nAnswer." + plain.eos_token
    assert [plain.decode(run) for run in trained_runs(example)] == ["Answer." + plain.eos_token]
    with pytest.raises(DataError, match="chat template"):
        build_dataset([CONVERSATION], plain)


def test_template_that_is_not_incremental_is_reported(smol_tokenizer):
    odd = copy.deepcopy(smol_tokenizer)
    odd.chat_template = "{% for m in messages %}{{ m['content'] }}|{% endfor %}{{ messages | length }}"
    with pytest.raises(DataError, match=r"records\[0\].*cannot be located"):
        build_dataset([InstructionRecord("q", "a")], odd)
