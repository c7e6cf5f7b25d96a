"""A tiny-llama adapter that changes what the model writes, and the references the chat tests compare with."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

import loralab

TARGETS = ["q_proj", "v_proj", "o_proj", "down_proj"]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: the tiny models gain nothing from more, and the CPUs may be shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def adapter_dir(tmp_path_factory):
    """A saved adapter for ``tiny-llama`` with large random factors (B ≠ 0): greedy text differs from the base."""
    from loralab.models import load_model

    model, _ = load_model("tiny-llama")
    loralab.add_adapter(model, loralab.LoraConfig(r=4, alpha=8, target_modules=TARGETS))
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return loralab.save_adapter(model, tmp_path_factory.mktemp("chat") / "adapter")


@pytest.fixture(scope="session")
def tiny_adapted(adapter_dir):
    """(model, tokenizer): ``load_model("tiny-llama")`` with the adapter loaded (shared: do not change it)."""
    from loralab.models import load_model

    model, tokenizer = load_model("tiny-llama")
    loralab.load_adapter(model, adapter_dir)
    return model, tokenizer


def hf_greedy(model, tokenizer, text: str, max_new_tokens: int, adapter: bool = True) -> str:
    """The reference: transformers' own ``generate`` on ``text``, greedy, one prompt, no padding."""
    from loralab.eval.generate import eos_ids

    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad(), (nullcontext() if adapter else loralab.disabled(model)):
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos_ids(model, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True)


@pytest.fixture(scope="session")
def greedy(tiny_adapted):
    """greedy(text, max_new_tokens, adapter=True): :func:`hf_greedy` on the adapted tiny-llama."""
    model, tokenizer = tiny_adapted
    return lambda text, max_new_tokens, adapter=True: hf_greedy(model, tokenizer, text, max_new_tokens, adapter)


@pytest.fixture(scope="session")
def chat_text(tiny_adapted):
    """chat_text(messages): the chat-template text the model continues (the generation prompt added)."""
    tokenizer = tiny_adapted[1]
    return lambda messages: tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
