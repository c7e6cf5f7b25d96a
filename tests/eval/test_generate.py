import pytest

from loralab.errors import ConfigError
from loralab.eval import GenerationSettings, generate
from loralab.eval.generate import cut_at_stop

PROMPTS = ["Hello there, model.", "Hi", "A somewhat longer prompt than the others"]


def plain(**fields):
    return GenerationSettings(chat=False, **fields)


def test_batched_greedy_equals_one_at_a_time(tiny, char_tokenizer):
    batched = generate(tiny, char_tokenizer, PROMPTS, plain(max_new_tokens=6, batch_size=3))
    single = [generate(tiny, char_tokenizer, [p], plain(max_new_tokens=6))[0] for p in PROMPTS]
    assert batched == single
    assert all(0 < len(text) <= 6 for text in batched)


def test_stop_strings_cut_the_text(tiny, char_tokenizer):
    full = generate(tiny, char_tokenizer, [PROMPTS[0]], plain(max_new_tokens=8))[0]
    stop = full[3:5]
    cut = generate(tiny, char_tokenizer, [PROMPTS[0]], plain(max_new_tokens=8, stop=(stop,)))[0]
    assert cut == full[: full.find(stop)]
    assert cut_at_stop("abc```def", ["```", "d"]) == "abc"


def test_sampling_is_seeded(tiny, char_tokenizer):
    settings = plain(max_new_tokens=6, temperature=1.5, top_p=0.9, seed=3)
    assert generate(tiny, char_tokenizer, PROMPTS, settings) == generate(tiny, char_tokenizer, PROMPTS, settings)


@pytest.mark.parametrize("fields", [dict(max_new_tokens=0), dict(temperature=-1.0), dict(top_p=0.0), dict(batch_size=0)])
def test_bad_settings(fields):
    with pytest.raises(ConfigError):
        GenerationSettings(**fields)
