import pytest
import torch

import loralab
from loralab.errors import ConfigError
from loralab.eval import kl_to_base

DOCS = ["A passage of source-domain prose for the tiny model.", "Another one, shorter."]


def with_adapter(model):
    loralab.add_adapter(model, loralab.LoraConfig(r=4, target_modules="all-linear"))
    return model


def randomise_B(model, scale=0.5):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


def reference_kl(model, ids):
    with torch.no_grad():
        tuned = model(input_ids=torch.tensor([ids])).logits[0].double()
        with loralab.disabled(model):
            base = model(input_ids=torch.tensor([ids])).logits[0].double()
    log_p, log_q = torch.log_softmax(base, -1), torch.log_softmax(tuned, -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def test_kl_is_zero_for_a_fresh_adapter_and_with_adapters_disabled(tiny, char_tokenizer):
    model = with_adapter(tiny)
    assert kl_to_base(model, char_tokenizer, DOCS, window=16).kl == 0.0  # B = 0
    randomise_B(model)
    with loralab.disabled(model):
        assert kl_to_base(model, char_tokenizer, DOCS, window=16).kl == 0.0


def test_kl_is_positive_and_matches_reference(tiny, char_tokenizer):
    model = with_adapter(tiny)
    randomise_B(model)
    result = kl_to_base(model, char_tokenizer, DOCS, window=16, batch_size=3)
    per_token = torch.cat([reference_kl(model, [ord(c) for c in d][i : i + 16])
                           for d in DOCS for i in range(0, len(d), 16)])  # fmt: skip
    assert result.tokens == sum(len(d) for d in DOCS)  # every position of the text
    assert result.kl > 0
    assert result.kl == pytest.approx(float(per_token.mean()), rel=1e-6)


def test_kl_needs_an_adapter(tiny, char_tokenizer):
    with pytest.raises(ConfigError, match="adapter"):
        kl_to_base(tiny, char_tokenizer, DOCS)


def test_kl_against_a_separate_reference_model_equals_the_disabled_adapter_path():
    """Full fine-tuning has no adapter to switch off: a reference copy of the base gives the same KL."""
    import copy

    from loralab import LoraConfig, add_adapter, unload
    from loralab.eval.kl import kl_to_base
    from loralab.models import load_model

    model, tokenizer = load_model("tiny-llama")
    reference = copy.deepcopy(model)
    add_adapter(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    documents = ["The quick brown fox jumps over the lazy dog.", "Some other words, for a second window."]
    via_adapter = kl_to_base(model, tokenizer, documents, window=16)
    plain = unload(model, merge=True)  # a plain model now: the full-fine-tuning situation
    via_reference = kl_to_base(plain, tokenizer, documents, window=16, reference=reference)
    assert via_adapter.kl > 1e-4
    assert via_reference.kl == pytest.approx(via_adapter.kl, rel=1e-4)
