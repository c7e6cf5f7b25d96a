"""Batched generation: prompts in, only the newly generated text out.

Each prompt is rendered as a user turn with the tokenizer's chat template (the same rendering
as in training, :func:`loralab.data.generation_prompt`; the prompt itself without a template).
Prompts are sorted by length and decoded ``batch_size`` at a time, left padded, with a KV cache:
greedy when ``temperature == 0``, otherwise sampled with temperature and nucleus ``top_p``
(seeded per batch; the global torch RNG is left as it was).

A row is finished at an end-of-sequence token (the tokenizer's and the generation config's), or
once its text reaches a stop: a ``stop`` string (the text is cut before it) or a ``stop_after``
regular expression (cut after its match, e.g. the line that gives the answer). Finished rows
leave the batch (their rows of the KV cache are dropped), and the batch ends when every row is
finished, so a batch costs what its rows need rather than ``max_new_tokens`` for all. The
result is what running every row to ``max_new_tokens`` and cutting it at its first stop gives
(:func:`cut_at_stop`), for greedy decoding token for token (tested against ``model.generate``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from loralab.errors import ConfigError

#: a prefix shared by every prompt of a batch (a system prompt) is computed once if it has at least this many tokens
MIN_SHARED_PREFIX = 4


@dataclass(frozen=True)
class GenerationSettings:
    """``temperature == 0`` means greedy; ``top_p`` applies only when sampling.

    ``stop``: strings that end a row, cut before; ``stop_after``: regular expressions that end a
    row, cut after the match (``r"####[^\\n]*\\d[^\\n]*\\n"``: the line that gives the answer).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 8
    stop: tuple[str, ...] = ()
    chat: bool = True
    seed: int = 0
    stop_after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}.")
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}.")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        for pattern in self.stop_after:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ConfigError(f"stop_after: {pattern!r} is not a regular expression ({err}).") from None


def render_prompt(tokenizer: Any, prompt: str, chat: bool = True) -> str:
    """The text the model continues: the chat-template rendering of ``prompt``, or ``prompt`` itself."""
    if not chat:
        return prompt
    from loralab.data import generation_prompt

    return generation_prompt(tokenizer, prompt)


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[str], settings: GenerationSettings = GenerationSettings(), on_batch: Any = None
) -> list[str]:
    """The new text for each prompt (special tokens removed, cut at its stop), in the order of ``prompts``.

    ``on_batch(rows)`` is called as rows finish (e.g. to advance a progress bar).
    """
    texts = [render_prompt(tokenizer, prompt, settings.chat) for prompt in prompts]
    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    order = sorted(range(len(texts)), key=lambda index: len(encoded[index]))
    outputs: list[str] = [""] * len(texts)
    for batch_number, start in enumerate(range(0, len(order), settings.batch_size)):
        chunk = order[start : start + settings.batch_size]
        new_texts = decode_batch(model, tokenizer, [encoded[i] for i in chunk], settings, batch_number, on_batch)
        for index, text in zip(chunk, new_texts):
            outputs[index] = text
    return outputs


def cut_at_stop(text: str, stop: Sequence[str] = (), stop_after: Sequence[str] = ()) -> str:
    """``text`` up to the earliest stop: before a ``stop`` string, or after a ``stop_after`` match."""
    ends = [text.find(s) for s in stop if s and s in text]
    ends += [match.end() for match in (re.search(p, text) for p in stop_after) if match]
    return text[: min(ends)] if ends else text


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-sequence ids from the tokenizer and the model's generation config."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return sorted(i for i in ids if i is not None)


@torch.no_grad()
def decode_batch(model: Any, tokenizer: Any, rows: list[list[int]], settings: GenerationSettings,
                 batch_number: int = 0, on_finish: Any = None) -> list[str]:  # fmt: skip
    """Decode one batch of prompt token rows; the new text of each row, cut at its stop.

    Left padding: row i's tokens sit at the right end, its positions count its own tokens only.
    Each step feeds one token per unfinished row; rows that finish leave the batch and the cache.
    """
    device = next(model.parameters()).device
    stops = tuple(eos_ids(model, tokenizer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    cache = kv_cache(max(len(row) for row in rows) + settings.max_new_tokens)
    shared = _shared_prefix(rows) if cache is not None and len(rows) > 1 else []
    extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    if len(shared) >= MIN_SHARED_PREFIX:  # e.g. the system prompt: computed once, its cache copied to every row
        prefix = torch.tensor([shared], device=device)
        model(input_ids=prefix, position_ids=torch.arange(len(shared), device=device)[None], past_key_values=cache,
              use_cache=True, **extra)  # fmt: skip
        cache.batch_repeat_interleave(len(rows))
    else:
        shared = []
    rows = [row[len(shared) :] for row in rows]
    width = max(len(row) for row in rows)
    ids = torch.tensor([[pad] * (width - len(row)) + list(row) for row in rows], device=device)
    own = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=device)
    mask = torch.cat([own.new_ones(len(rows), len(shared)), own], dim=1)
    positions = len(shared) + (own.cumsum(-1) - 1).clamp(min=0)
    generator = None
    if settings.temperature > 0:
        generator = torch.Generator(device=device).manual_seed(settings.seed * 100_003 + batch_number)
    new_tokens: list[list[int]] = [[] for _ in rows]
    finished = [False] * len(rows)
    has_stops = bool(settings.stop or settings.stop_after)
    alive = list(range(len(rows)))  # batch position j holds row alive[j] (finished rows stay until compacted)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True, **extra)
    cache, next_position = out.past_key_values, positions[:, -1] + 1
    for step in range(settings.max_new_tokens):
        chosen = _next_tokens(out.logits[:, -1, :], settings, generator)
        newly = 0
        for row, token in zip(alive, chosen.tolist()):
            if finished[row]:
                continue
            new_tokens[row].append(token)  # an end-of-sequence token too: decoding drops special tokens
            if token in stops or (has_stops and _reached_stop(tokenizer, new_tokens[row], settings)):
                finished[row], newly = True, newly + 1
        running = [j for j, row in enumerate(alive) if not finished[row]]
        if on_finish is not None and newly:
            on_finish(newly)
        if not running or step == settings.max_new_tokens - 1:
            if on_finish is not None and running:
                on_finish(len(running))
            break
        if len(alive) - len(running) >= max(1, len(alive) // 8):  # finished rows leave once enough to pay the copy
            index = torch.tensor(running, device=device)
            cache.batch_select_indices(index)
            mask, next_position, chosen = mask[index], next_position[index], chosen[index]
            alive = [alive[j] for j in running]
        mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
        out = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=next_position[:, None], past_key_values=cache,
                    use_cache=True)  # fmt: skip
        cache, next_position = out.past_key_values, next_position + 1
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [cut_at_stop(text, settings.stop, settings.stop_after) for text in texts]


def _reached_stop(tokenizer: Any, tokens: list[int], settings: GenerationSettings) -> bool:
    text = tokenizer.batch_decode([tokens], skip_special_tokens=True)[0]
    return cut_at_stop(text, settings.stop, settings.stop_after) != text


def _shared_prefix(rows: list[list[int]]) -> list[int]:
    """The tokens every row starts with, leaving each row at least one token of its own."""
    shortest = min(len(row) for row in rows) - 1
    length = 0
    while length < shortest and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return list(rows[0][:length])


def _next_tokens(logits: torch.Tensor, settings: GenerationSettings, generator: torch.Generator | None) -> torch.Tensor:
    """Greedy argmax, or a draw from softmax(logits / T) restricted to the top-p nucleus."""
    if settings.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
    if settings.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > settings.top_p  # mass before a token already covers top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _accepts(model: Any, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def kv_cache(capacity: int) -> Any:
    """An empty KV cache whose layers hold ``capacity`` positions and are written in place (growing if ever
    needed) instead of concatenated at every step; None (the model's default cache) where this transformers
    version has no such layer API."""
    try:
        from transformers.cache_utils import Cache, DynamicLayer
    except ImportError:
        return None

    class GrowingLayer(DynamicLayer):
        """Keys and values (batch, heads, length, dim) in a buffer of spare capacity along the length."""

        def lazy_initialization(self, key_states: torch.Tensor, *_: Any) -> None:
            # DynamicLayer's own takes (keys, values) in transformers 5 and (keys) in 4.5x: set what both set
            self.dtype, self.device = key_states.dtype, key_states.device
            self.keys = self.values = key_states.new_empty(0)
            self.is_initialized = True
            self.length = 0
            self.key_buffer = self.value_buffer = None

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if self.key_buffer is None or end > self.key_buffer.shape[-2]:
                self.key_buffer = _grown(self.key_buffer, key_states, self.length, max(end, capacity))
                self.value_buffer = _grown(self.value_buffer, value_states, self.length, max(end, capacity))
            self.key_buffer[:, :, self.length : end] = key_states
            self.value_buffer[:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
            return self.keys, self.values

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.is_initialized and self.key_buffer is not None:
                self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
                self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
                self.keys, self.values = self.key_buffer[:, :, : self.length], self.value_buffer[:, :, : self.length]

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized and self.key_buffer is not None:
                self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
                self.keys, self.values = self.key_buffer[:, :, : self.length], self.value_buffer[:, :, : self.length]

    try:
        return Cache(layer_class_to_replicate=GrowingLayer)
    except TypeError:
        return None


def _grown(buffer: torch.Tensor | None, new: torch.Tensor, length: int, needed: int) -> torch.Tensor:
    """A buffer for ``needed`` positions (or twice its old size) shaped like ``new``, the first ``length`` copied."""
    shape = list(new.shape)
    shape[-2] = max(needed, 2 * buffer.shape[-2] if buffer is not None else 0)
    grown = new.new_empty(shape)
    if buffer is not None and length:
        grown[:, :, :length] = buffer[:, :, :length]
    return grown
