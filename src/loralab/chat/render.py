"""The text a model continues for a conversation: its chat template, or plain text without one.

One user message renders exactly as :func:`loralab.data.generation_prompt` renders a prompt (the
text used in training and evaluation): the template with ``add_generation_prompt=True``, or
``prompt + "\\n"`` for a tokenizer without a template. A longer conversation without a template
is each message's content on its own line(s), in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loralab.data.render import has_chat_template, plain_prompt
from loralab.errors import DataError

#: the roles a conversation may hold (the chat template decides how each is shown)
ROLES = ("system", "user", "assistant")


def conversation_prompt(tokenizer: Any, messages: Sequence[dict[str, str]], where: str = "the conversation") -> str:
    """The text the model continues to write the next assistant turn of ``messages``."""
    if not has_chat_template(tokenizer):
        return "".join(plain_prompt(message["content"]) for message in messages)
    try:
        text = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False, add_generation_prompt=True)
    except Exception as error:  # jinja's TemplateError, or whatever the template itself raises
        raise DataError(f"{where}: the tokenizer's chat template rejected it ({error}).") from None
    if not isinstance(text, str):
        raise DataError(f"{where}: the chat template returned {type(text).__name__}, not text.")
    return text
