import pytest
import torch

from loralab.data import MultipleChoice
from loralab.eval import score_choices
from loralab.eval.multiple_choice import ChoiceScores, predictions


def next_token_ranking(model, text):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[ord(c) for c in text]])).logits[0, -1]
    return torch.argsort(logits, descending=True).tolist()


def test_the_choice_the_model_predicts_wins(tiny, char_tokenizer):
    items = []
    for context in ("Pick one: ", "Another context "):
        ranking = [i for i in next_token_ranking(tiny, context) if i < 127]
        best, others = chr(ranking[0]), [chr(i) for i in ranking[-3:]]
        items.append(MultipleChoice(context, (others[0], best, others[1], others[2]), label=1))
    scores = score_choices(tiny, char_tokenizer, items, batch_size=3)
    assert predictions(scores, normalise=False) == [1, 1]
    assert predictions(scores, normalise=True) == [1, 1]  # equal lengths: same choice


def test_loglik_matches_a_float64_reference(tiny, char_tokenizer):
    item = MultipleChoice("Context", ("ab", "cde"), label=0)  # scored texts " ab", " cde"
    scores = score_choices(tiny, char_tokenizer, [item])
    for value, scored in zip(scores.loglik[0], (" ab", " cde")):
        ids = [ord(c) for c in "Context" + scored]
        with torch.no_grad():
            logp = torch.log_softmax(tiny(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        start = len("Context")
        expected = sum(float(logp[t - 1, ids[t]]) for t in range(start, len(ids)))
        assert value == pytest.approx(expected, rel=1e-5)
    assert scores.chars[0] == [3, 4]


def test_length_normalisation_uses_characters():
    scores = ChoiceScores(loglik=[[-10.0, -12.0]], chars=[[2, 10]])
    assert predictions(scores, normalise=False) == [0]
    assert predictions(scores, normalise=True) == [1]  # -1.2 per character beats -5
