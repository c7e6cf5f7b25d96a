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
    # float64 reference; loralab's log-softmax is float32 (differences ~1e-8 nats here)
    assert result.kl == pytest.approx(float(per_token.mean()), rel=1e-5, abs=1e-7)


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


def test_perplexities_from_the_kl_pass_equal_separate_perplexity_runs(tiny, char_tokenizer):
    """with_perplexity: the tuned and the base perplexity come out of the KL pass's own logits."""
    from loralab.eval import perplexity

    model = with_adapter(tiny)
    randomise_B(model)
    result = kl_to_base(model, char_tokenizer, DOCS, window=16, with_perplexity=True)
    tuned = perplexity(model, char_tokenizer, DOCS, window=16)
    with loralab.disabled(model):
        base = perplexity(model, char_tokenizer, DOCS, window=16)
    assert result.perplexity.tokens == tuned.tokens and result.base_perplexity.tokens == base.tokens
    assert result.perplexity.perplexity == pytest.approx(tuned.perplexity, rel=1e-6)
    assert result.base_perplexity.perplexity == pytest.approx(base.perplexity, rel=1e-6)
    assert abs(tuned.perplexity - base.perplexity) > 1e-3  # the adapter does change it


def test_evaluate_scores_perplexity_and_kl_on_the_same_text_in_one_pass(tmp_path, tiny, char_tokenizer):
    from loralab.eval import evaluate

    text = tmp_path / "prose.txt"
    text.write_text("First paragraph of prose.\n\nA second, somewhat longer paragraph of prose.\n")
    model = with_adapter(tiny)
    randomise_B(model)
    calls = []
    handle = model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        together = evaluate(model, char_tokenizer, [f"ppl:{text}", f"kl:{text}"], progress=False, window=16)
        shared_calls = len(calls)
        calls.clear()
        apart = evaluate(model, char_tokenizer, [f"ppl:{text}"], progress=False, window=16)
        apart += evaluate(model, char_tokenizer, [f"kl:{text}"], progress=False, window=16)
    finally:
        handle.remove()
    assert [(r.task, r.metric) for r in together] == [(f"ppl:{text}", "perplexity"), (f"kl:{text}", "kl_to_base")]
    for a, b in zip(together, apart):
        assert a.value == pytest.approx(b.value, rel=1e-6) and a.n == b.n
    assert shared_calls < len(calls)  # one tuned pass and one base pass instead of three passes


@pytest.mark.parametrize("copies", [1, 4])
def test_scores_are_read_from_the_device_once_per_pass(tiny, char_tokenizer, monkeypatch, copies):
    """On a GPU each ``.cpu()`` of a result waits for the queued work: KL and both perplexities are moved once
    each, whatever the number of windows (counted on the CPU, the same code path)."""
    model = with_adapter(tiny)
    randomise_B(model)
    calls = []
    real = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    result = kl_to_base(model, char_tokenizer, DOCS * copies, window=8, with_perplexity=True)
    assert result.tokens > 8 * copies and result.kl > 0
    assert len(calls) == 3
