"""Talking to a model: ``loralab chat`` (a streamed conversation, the adapter switchable on and off)
and ``loralab generate`` (prompts or a JSONL file of prompts → JSONL completions).

``session``: the conversation and its commands; ``prompts``: prompt files and batched completions;
``source``: what MODEL / ``--adapter`` / a run folder name; ``render``: the chat-template text.
"""

from loralab.chat.prompts import PromptRecord, completion_lines, generate_completions, prompt_record, read_prompts
from loralab.chat.session import ChatSession, CommandResult, run_chat
from loralab.chat.source import ModelChoice, choose, load_choice

__all__ = [
    "ChatSession", "CommandResult", "ModelChoice", "PromptRecord", "choose", "completion_lines", "generate_completions",
    "load_choice", "prompt_record", "read_prompts", "run_chat",
]  # fmt: skip
