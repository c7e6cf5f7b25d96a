"""Batched generation: prompts in, only the newly generated text out.

Each prompt is rendered as a user turn with the tokenizer's chat template (the
same rendering as in training, :func:`loralab.data.generation_prompt`; a plain
``prompt + "\\n"`` without a template). Prompts are sorted by length, left
padded and decoded with ``model.generate`` (KV cache), greedy when
``temperature == 0`` and otherwise sampled with temperature and nucleus
``top_p``. A row stops at an end-of-sequence token (the tokenizer's and the
generation config's) or once it contains one of ``stop``; the text is cut
before the first stop string. Sampling is seeded per batch, leaving the global
torch RNG as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from loralab.errors import ConfigError


@dataclass(frozen=True)
class GenerationSettings:
    """``temperature == 0`` means greedy; ``top_p`` applies only when sampling."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 8
    stop: tuple[str, ...] = ()
    chat: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}.")
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}.")


def render_prompt(tokenizer: Any, prompt: str, chat: bool = True) -> str:
    """The text the model continues: the chat-template rendering of ``prompt``, or ``prompt`` itself."""
    if not chat:
        return prompt
    from loralab.data import generation_prompt

    return generation_prompt(tokenizer, prompt)


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: GenerationSettings = GenerationSettings(), on_batch: Any = None
) -> list[str]:
    """The new text for each prompt (special tokens removed), in the order of ``prompts``.

    ``on_batch(rows)`` is called after each batch (e.g. to advance a progress bar).
    """
    texts = [render_prompt(tokenizer, prompt, settings.chat) for prompt in prompts]
    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    order = sorted(range(len(texts)), key=lambda index: len(encoded[index]))
    outputs: list[str] = [""] * len(texts)
    for batch_number, start in enumerate(range(0, len(order), settings.batch_size)):
        chunk = order[start : start + settings.batch_size]
        new_texts = _generate_batch(model, tokenizer, [encoded[i] for i in chunk], settings, batch_number)
        for index, text in zip(chunk, new_texts):
            outputs[index] = text
        if on_batch is not None:
            on_batch(len(chunk))
    return outputs


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    positions = [text.find(s) for s in stop if s and s in text]
    return text[: min(positions)] if positions else text


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-sequence ids from the tokenizer and the model's generation config."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return sorted(i for i in ids if i is not None)


class _StopStrings:
    """Stopping criterion: a row is done once its decoded new text contains a stop string."""

    def __init__(self, tokenizer: Any, prompt_length: int, stop: Sequence[str]) -> None:
        self.tokenizer, self.prompt_length, self.stop = tokenizer, prompt_length, tuple(stop)

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        new = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        return torch.tensor([any(s in text for s in self.stop) for text in new], device=input_ids.device)


def _generate_batch(model: Any, tokenizer: Any, rows: list[list[int]], settings: GenerationSettings, batch_number: int) -> list[str]:
    from transformers import StoppingCriteriaList

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids(model, tokenizer)[0]
    width = max(len(row) for row in rows)
    input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows])
    attention = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    device = next(model.parameters()).device
    sampling = settings.temperature > 0
    options: dict[str, Any] = dict(
        max_new_tokens=settings.max_new_tokens, do_sample=sampling, pad_token_id=pad, eos_token_id=eos_ids(model, tokenizer)
    )
    if sampling:
        options.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    else:
        options.update(temperature=None, top_p=None, top_k=None)
    if settings.stop:
        options["stopping_criteria"] = StoppingCriteriaList([_StopStrings(tokenizer, width, settings.stop)])
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(settings.seed * 100_003 + batch_number)
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **options)
    new = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return [cut_at_stop(text, settings.stop) for text in new]
