import math

import pytest
import torch

from loralab.eval import perplexity

TEXT = "The quick brown fox jumps over the lazy dog. " * 3


def reference_nll(model, ids, window):
    """Token-weighted NLL computed window by window, one sequence at a time, in float64."""
    total, count = 0.0, 0
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        if len(chunk) < 2:
            continue
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([chunk])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        for t in range(1, len(chunk)):
            total -= float(logp[t - 1, chunk[t]])
            count += 1
    return total, count


def test_perplexity_matches_a_float64_reference(tiny, char_tokenizer):
    documents = [TEXT, "Short one.", "x"]
    result = perplexity(tiny, char_tokenizer, documents, window=16, batch_size=3)
    ids = [[ord(c) for c in doc] for doc in documents]
    nll = [reference_nll(tiny, doc, 16) for doc in ids]
    tokens = sum(count for _, count in nll)
    mean = sum(total for total, _ in nll) / tokens
    assert result.tokens == tokens
    assert result.nll == pytest.approx(mean, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(mean), rel=1e-5)
    assert result.stderr > 0


def test_batching_does_not_change_the_result(tiny, char_tokenizer):
    one = perplexity(tiny, char_tokenizer, [TEXT, "Short one."], window=20, batch_size=1)
    many = perplexity(tiny, char_tokenizer, [TEXT, "Short one."], window=20, batch_size=8)
    assert one.nll == pytest.approx(many.nll, rel=1e-5)
