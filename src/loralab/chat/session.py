"""``loralab chat``: a conversation with a model, its replies streamed as they are generated.

:class:`ChatSession` holds the state: the system prompt, the turns so far, whether the adapter is
on. Each reply renders the whole conversation with the model's chat template
(:func:`loralab.chat.render.conversation_prompt`) and decodes with transformers' ``generate``
(greedy at temperature 0, else sampled; the session seeds torch once, so a session is
reproducible), streaming text as it is decoded: the new tokens are decoded together at each step
and only what is complete is shown (a character split across tokens waits for its last byte).

Commands (:meth:`ChatSession.command`): ``/reset`` clears the turns (the system prompt stays),
``/system TEXT`` sets the system prompt (``/system`` alone removes it), ``/adapter off|on`` runs
the base model or the adapted one in the same session (:func:`loralab.disabled`), ``/help``,
``/quit``. :func:`run_chat` is the terminal loop: Ctrl-D or ``/quit`` ends it, Ctrl-C stops a
reply being written (the turn is dropped) or, at the prompt, ends the chat.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TextIO

import torch

from loralab.chat.render import conversation_prompt
from loralab.errors import ConfigError, LoraLabError
from loralab.eval.generate import GenerationSettings, eos_ids

PROMPT = "you> "
HELP = ("commands: /reset (clear the conversation), /system TEXT (set the system prompt; /system alone removes it), "
        "/adapter off|on (compare with the base model), /help, /quit (or Ctrl-D)")  # fmt: skip


@dataclass(frozen=True)
class CommandResult:
    """What a command did: ``message`` to show; ``quit``: end the chat."""

    message: str = ""
    quit: bool = False


class ChatSession:
    """One conversation with ``model`` (see the module docstring). ``settings``: max_new_tokens,
    temperature (0 = greedy) and seed of :class:`loralab.eval.GenerationSettings`."""

    def __init__(self, model: Any, tokenizer: Any, settings: GenerationSettings = GenerationSettings(),
                 system: str | None = None) -> None:  # fmt: skip
        from loralab.lora import active_adapters

        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.system = system or None
        self.turns: list[dict[str, str]] = []
        try:
            self.has_adapter = bool(active_adapters(model))
        except ConfigError:  # a model without adapters
            self.has_adapter = False
        self.adapter_on = self.has_adapter
        if settings.temperature > 0:
            torch.manual_seed(settings.seed)

    # -- state ----------------------------------------------------------------------------------
    def messages(self, user_text: str | None = None) -> list[dict[str, str]]:
        """The conversation the model sees: the system prompt, the turns, then ``user_text`` if given."""
        found = [{"role": "system", "content": self.system}] if self.system else []
        found += [dict(turn) for turn in self.turns]
        if user_text is not None:
            found.append({"role": "user", "content": user_text})
        return found

    def prompt(self, user_text: str) -> str:
        """The text the model continues when the user says ``user_text`` next."""
        return conversation_prompt(self.tokenizer, self.messages(user_text))

    def reset(self) -> None:
        self.turns.clear()

    # -- replies --------------------------------------------------------------------------------
    @torch.no_grad()
    def reply(self, user_text: str, on_text: Callable[[str], None] | None = None) -> str:
        """The model's reply to ``user_text``, passed to ``on_text`` piece by piece as it is decoded.

        The exchange joins the conversation only once the reply is complete: a reply stopped by
        Ctrl-C (KeyboardInterrupt) leaves the conversation as it was.
        """
        from loralab.lora import disabled

        ids = self.tokenizer(self.prompt(user_text), add_special_tokens=False, return_tensors="pt")["input_ids"]
        self._check_length(ids.shape[1])
        device = next(self.model.parameters()).device
        ids = ids.to(device)
        streamer = _TextStream(self.tokenizer, on_text or (lambda text: None))
        sampling = self.settings.temperature > 0
        options = dict(do_sample=True, temperature=self.settings.temperature, top_p=self.settings.top_p, top_k=0) if sampling \
            else dict(do_sample=False)  # fmt: skip
        with nullcontext() if self.adapter_on or not self.has_adapter else disabled(self.model):
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.settings.max_new_tokens,
                                      eos_token_id=eos_ids(self.model, self.tokenizer), pad_token_id=self.tokenizer.pad_token_id,
                                      streamer=streamer, **options)  # fmt: skip
        text = self.tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True)
        streamer.finish(text)
        self.turns += [{"role": "user", "content": user_text}, {"role": "assistant", "content": text}]
        return text

    def _check_length(self, prompt_tokens: int) -> None:
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(self.model.config, "n_positions", None)
        if isinstance(limit, int) and prompt_tokens + self.settings.max_new_tokens > limit:
            raise ConfigError(f"the conversation is {prompt_tokens} tokens and a reply may add {self.settings.max_new_tokens}, "
                              f"more than the model's context of {limit}; /reset to start again (or lower --max-new-tokens)")  # fmt: skip

    # -- commands -------------------------------------------------------------------------------
    def command(self, line: str) -> CommandResult:
        """Carry out a ``/command`` line (see the module docstring)."""
        name, _, argument = line.strip().partition(" ")
        argument = argument.strip()
        name = name.lower()
        if name in ("/quit", "/exit"):
            return CommandResult(quit=True)
        if name == "/reset":
            self.reset()
            kept = " (the system prompt stays; /system alone removes it)" if self.system else ""
            return CommandResult(f"conversation cleared{kept}")
        if name == "/system":
            self.system = argument or None
            return CommandResult(f"system prompt set: {argument}" if argument else "system prompt removed")
        if name == "/adapter":
            return self._adapter_command(argument.lower())
        if name in ("/help", "/?"):
            return CommandResult(HELP)
        return CommandResult(f"unknown command {name}; {HELP}")

    def _adapter_command(self, argument: str) -> CommandResult:
        if not self.has_adapter:
            return CommandResult("no adapter is loaded: start the chat with --adapter DIR or a run folder to compare")
        if argument not in ("on", "off", ""):
            return CommandResult("usage: /adapter off|on")
        if argument:
            self.adapter_on = argument == "on"
        return CommandResult(f"adapter {'on' if self.adapter_on else 'off: replies come from the base model'}")


class _TextStream:
    """A transformers streamer: decodes the new tokens at each step and passes on the text not yet shown.

    Text is held back while it ends in U+FFFD (a character whose bytes are split across tokens) or
    while it is not an extension of what was shown (a decoder that rewrites the end of the text).
    """

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        self.tokenizer, self.on_text = tokenizer, on_text
        self.tokens: list[int] = []
        self.shown = ""
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first passes the prompt
            self.prompt_seen = True
            return
        self.tokens += value.reshape(-1).tolist()
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            self._show(text)

    def end(self) -> None:
        pass

    def finish(self, text: str) -> None:
        """Show what is left of the final ``text``."""
        self._show(text)

    def _show(self, text: str) -> None:
        if text.startswith(self.shown) and len(text) > len(self.shown):
            self.on_text(text[len(self.shown) :])
            self.shown = text


# -- the terminal loop ----------------------------------------------------------------------------
def run_chat(session: ChatSession, banner: str = "", read: Callable[[str], str] = input, out: TextIO | None = None) -> None:
    """Read lines and answer them until ``/quit``, end of input (Ctrl-D) or Ctrl-C at the prompt."""
    from loralab.stops import Stopped

    out = out or sys.stdout

    def show(text: str) -> None:
        out.write(text)
        out.flush()

    if banner:
        show(banner + "\n" + HELP + "\n")
    while True:
        try:
            line = read(PROMPT)
        except EOFError:  # Ctrl-D
            show("\n")
            return
        except KeyboardInterrupt as stop:
            if isinstance(stop, Stopped):  # SIGTERM / SIGHUP: the command's usual exit status
                raise
            show("\n")
            return
        if not line.strip():
            continue
        if line.lstrip().startswith("/"):
            result = session.command(line)
            if result.quit:
                return
            show(result.message + "\n")
            continue
        try:
            session.reply(line, show)
            show("\n")
        except KeyboardInterrupt as stop:
            if isinstance(stop, Stopped):
                raise
            show("\n[reply stopped; it is not part of the conversation]\n")
        except LoraLabError as err:
            show(f"loralab: error: {err}\n")


def use_line_editing() -> None:
    """Arrow keys and history for :func:`input` on a terminal (readline, where Python has it)."""
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (importing it is what turns line editing on)
        except ImportError:
            pass
