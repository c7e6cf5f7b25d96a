"""Fixtures for evaluation tests: a character tokenizer that fits the tiny 128-token models."""

import pytest


class CharTokenizer:
    """One token per ASCII character (id = code point); 127 is eos and pad. No chat template."""

    eos_token_id = 127
    pad_token_id = 127
    chat_template = None

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def batch_decode(self, rows, skip_special_tokens=True):
        return ["".join(chr(int(i)) for i in row if int(i) != 127) for row in rows]


@pytest.fixture
def char_tokenizer():
    return CharTokenizer()


@pytest.fixture
def tiny():
    from loralab.models import tiny_model

    return tiny_model("llama", vocab_size=128, seed=0)
