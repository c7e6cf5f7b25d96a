import pytest

from loralab import LoraConfig
from loralab.errors import ConfigError
from loralab.lora.config import matches_selector, pattern_value


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(r=0), "r"),
        (dict(r=2.5), "r"),
        (dict(alpha=0), "alpha"),
        (dict(alpha=-1.0), "alpha"),
        (dict(alpha=float("inf")), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(alpha_pattern={"q_proj": float("inf")}), "alpha_pattern"),
        (dict(dropout=float("nan")), "dropout"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(bias="some"), "bias"),
        (dict(init="orthogonal"), "init"),
        (dict(target_modules=[]), "target_modules"),
        (dict(target_modules="(unclosed"), "target_modules"),
        (dict(rank_pattern={"q_proj": 0}), "rank_pattern"),
        (dict(layers=[-1]), "layers"),
        (dict(rslora="yes"), "rslora"),
    ],
)
def test_bad_values_name_their_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        LoraConfig(**kwargs)


def test_config_is_frozen_and_replace_validates():
    cfg = LoraConfig(r=4, target_modules=["q_proj"])
    with pytest.raises(Exception):
        cfg.r = 8
    assert cfg.replace(r=8).r == 8 and cfg.r == 4
    with pytest.raises(ConfigError):
        cfg.replace(r=0)


def test_scale_lora_and_rslora():
    assert LoraConfig(r=16, alpha=32).scale_for("x") == 2.0
    assert LoraConfig(r=16, alpha=32, rslora=True).scale_for("x") == 8.0  # 32 / sqrt(16)


def test_selectors_follow_peft_rules():
    path = "model.layers.0.self_attn.q_proj"
    assert matches_selector(("q_proj",), path)
    assert matches_selector(("self_attn.q_proj",), path)
    assert matches_selector((path,), path)
    assert not matches_selector(("proj",), path)  # a name is a whole component
    assert matches_selector(r".*layers\.0\..*q_proj", path)
    assert not matches_selector("q_proj", path)  # a regex must match the whole path
    patterns = {r"layers\.1\..*": 2, "q_proj": 4}
    assert pattern_value(patterns, path, 8) == 4
    assert pattern_value(patterns, "model.layers.1.mlp.up_proj", 8) == 2
    assert pattern_value(patterns, "model.layers.0.mlp.up_proj", 8) == 8
