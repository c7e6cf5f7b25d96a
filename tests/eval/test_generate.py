import re

import pytest
import torch

from loralab.errors import ConfigError
from loralab.eval import GenerationSettings, generate
from loralab.eval.generate import cut_at_stop, eos_ids, render_prompt
from loralab.eval.tasks.math_task import ANSWER_LINE

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


SHARED = "System: answer briefly. User: "  # a common prefix: computed once and shared by the batch
MIXED = [SHARED + "What is 2 + 2?", SHARED + "Hi", SHARED + "Name three colours, please", "Unrelated start"]


def _hf_greedy(model, tokenizer, prompt, max_new_tokens):
    """The reference: transformers' own generate, one prompt at a time (no padding, no shared prefix)."""
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=eos_ids(model, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return tokenizer.batch_decode(out[:, ids.shape[1] :])[0]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("prompts", [PROMPTS, MIXED[:3], MIXED], ids=["plain", "shared-prefix", "mixed"])
def test_greedy_equals_transformers_generate(kind, prompts, char_tokenizer):
    from loralab.models import tiny_model

    model = tiny_model(kind, vocab_size=128, seed=1).eval()
    ours = generate(model, char_tokenizer, prompts, plain(max_new_tokens=12, batch_size=8))
    assert ours == [_hf_greedy(model, char_tokenizer, p, 12) for p in prompts]


def test_the_shared_prefix_is_computed_once(tiny, char_tokenizer):
    seen = []
    handle = tiny.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape), with_kwargs=True)
    try:
        generate(tiny, char_tokenizer, MIXED[:3], plain(max_new_tokens=2, batch_size=8))
    finally:
        handle.remove()
    prefix = len(SHARED)
    assert seen[0] == (1, prefix)  # the prefix, once
    assert seen[1] == (3, max(len(p) for p in MIXED[:3]) - prefix)  # then each row's own tokens


def _rows_fed(model, run):
    """How many (row, token) positions the model computed while ``run()`` generated."""
    fed = []
    handle = model.register_forward_pre_hook(lambda module, args, kwargs: fed.append(kwargs["input_ids"].numel()), with_kwargs=True)
    try:
        return run(), sum(fed)
    finally:
        handle.remove()


def test_stopping_early_equals_running_to_the_end_and_cutting(tiny, char_tokenizer):
    full = generate(tiny, char_tokenizer, PROMPTS, plain(max_new_tokens=24, batch_size=3))
    first, second = [i for i, text in enumerate(full) if len(text) >= 12][:2]  # rows that run long (no early EOS)
    # stops that each end one row early: a string (cut before) and a pattern (cut after its match)
    stop = (full[first][4:6],)
    stop_after = (re.escape(full[second][5:8]),)
    settings = plain(max_new_tokens=24, batch_size=3, stop=stop, stop_after=stop_after)
    (early, fed_early) = _rows_fed(tiny, lambda: generate(tiny, char_tokenizer, PROMPTS, settings))
    (_, fed_full) = _rows_fed(tiny, lambda: generate(tiny, char_tokenizer, PROMPTS, plain(max_new_tokens=24, batch_size=3)))
    assert early == [cut_at_stop(text, stop, stop_after) for text in full]
    assert early[first] != full[first] and early[second] != full[second]  # both stops did cut
    assert fed_early < fed_full  # finished rows left the batch: less work, not just a shorter text


def test_cut_at_stop_takes_the_earliest_stop():
    assert cut_at_stop("a #### 12\nmore #### 13\n", (), (ANSWER_LINE,)) == "a #### 12\n"
    assert cut_at_stop("no answer line #### \n#### 7", (), (ANSWER_LINE,)) == "no answer line #### \n#### 7"
    assert cut_at_stop("x STOP y #### 3\n", ("STOP",), (ANSWER_LINE,)) == "x "
    assert cut_at_stop("#### 3\n then STOP", ("STOP",), (ANSWER_LINE,)) == "#### 3\n"


def test_bad_stop_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="stop_after"):
        GenerationSettings(stop_after=("([",))


@pytest.mark.slow
def test_smollm2_answers_equal_transformers_generate_and_the_cut(smollm2):
    """On the real model and real arith prompts (chat template, shared system prompt, left padding):
    the same greedy answers as transformers' generate, and stopping at the answer line = cutting there."""
    from loralab.data.tasks import get_task

    model, tokenizer = smollm2
    questions = [p.question for p in get_task("arith", level=1).test(4, seed=3)]
    ours = generate(model, tokenizer, questions, GenerationSettings(max_new_tokens=40, batch_size=4))
    reference = []
    for question in questions:
        ids = torch.tensor([tokenizer(render_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False,
                             eos_token_id=eos_ids(model, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        reference.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    assert ours == reference
    # a stop that ends each answer at its first sentence: the early stop equals the cut of the full answer
    stopped = generate(model, tokenizer, questions, GenerationSettings(max_new_tokens=40, batch_size=4, stop_after=(r"\.\s",)))
    assert stopped == [cut_at_stop(text, (), (r"\.\s",)) for text in ours]
    assert any(s != o for s, o in zip(stopped, ours))
