"""``set_attention``: the attention kernel a model uses, and a clear error where it cannot run."""

import pytest

from loralab.errors import ConfigError
from loralab.models import load_model
from loralab.models.attention import set_attention


def test_set_attention_switches_the_kernel_and_auto_leaves_it():
    model, _ = load_model("tiny-llama")
    set_attention(model, "auto")
    assert model.config._attn_implementation == "sdpa"
    set_attention(model, "eager")
    assert model.config._attn_implementation == "eager"


def test_a_kernel_that_cannot_run_here_is_a_one_line_config_error():
    model, _ = load_model("tiny-llama")
    with pytest.raises(ConfigError, match=r"model.attention: flash_attention_2 cannot run here: .*installed.*\(use sdpa or eager\)$"):
        set_attention(model, "flash_attention_2")
    with pytest.raises(ConfigError, match="model.attention must be one of auto, sdpa, eager"):
        set_attention(model, "fast")
