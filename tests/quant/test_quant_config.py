"""QuantConfig: defaults, validation, to_dict."""

import dataclasses

import pytest
import torch

from loralab.errors import ConfigError
from loralab.quant import QuantConfig


def test_defaults_are_qlora_s():
    config = QuantConfig()
    assert (config.block_size, config.double_quant, config.scale_block_size) == (64, True, 256)
    assert config.torch_compute_dtype == torch.bfloat16 and not config.quantize_head
    assert config.to_dict() == dict(
        block_size=64, double_quant=True, scale_block_size=256, compute_dtype="bfloat16", quantize_head=False, skip_modules=None
    )


def test_is_frozen_and_lists_become_tuples():
    config = QuantConfig(skip_modules=["down_proj"], compute_dtype="float32")
    assert config.skip_modules == ("down_proj",) and config.to_dict()["skip_modules"] == ["down_proj"]
    assert config.torch_compute_dtype == torch.float32
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.block_size = 32


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(compute_dtype="float16"), "compute_dtype must be one of"),
        (dict(compute_dtype=torch.bfloat16), "compute_dtype must be one of"),
        (dict(block_size=0), "block_size must be a positive integer"),
        (dict(block_size=63), "block_size must be even"),
        (dict(block_size=64.0), "block_size must be a positive integer"),
        (dict(scale_block_size=-1), "scale_block_size must be a positive integer"),
        (dict(double_quant="yes"), "double_quant must be true or false"),
        (dict(quantize_head=1), "quantize_head must be true or false"),
        (dict(skip_modules="("), "skip_modules: '\\(' is not a valid regular expression"),
    ],
)
def test_bad_values_raise_config_error(fields, message):
    with pytest.raises(ConfigError, match=message):
        QuantConfig(**fields)
