"""The chat session: streamed replies equal transformers' greedy generate, the adapter switches off and
on in the same session, /reset and /system change what the model sees, run folders name what loads."""

from __future__ import annotations

import io

import pytest
import torch
import yaml

import loralab
from loralab.chat import ChatSession, choose, load_choice, run_chat
from loralab.chat.session import _TextStream
from loralab.errors import AdapterFileError, ConfigError, ModelLoadError
from loralab.eval.generate import GenerationSettings

N = 8


def session(tiny_adapted, **fields) -> ChatSession:
    model, tokenizer = tiny_adapted
    return ChatSession(model, tokenizer, GenerationSettings(max_new_tokens=N, **fields))


def test_a_streamed_reply_is_transformers_greedy_completion(tiny_adapted, greedy, chat_text):
    chat = session(tiny_adapted)
    pieces: list[str] = []
    reply = chat.reply("Hello there", pieces.append)
    assert reply == greedy(chat_text([{"role": "user", "content": "Hello there"}]), N)
    assert "".join(pieces) == reply and len(pieces) > 1  # shown piece by piece as it was decoded
    # the next turn sees the whole conversation
    second = chat.reply("And then?")
    history = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": reply},
               {"role": "user", "content": "And then?"}]  # fmt: skip
    assert chat.messages() == history + [{"role": "assistant", "content": second}]
    assert second == greedy(chat_text(history), N)


def test_adapter_off_gives_the_base_model_and_on_the_adapted_one(tiny_adapted, greedy, chat_text):
    from loralab.models import load_model

    base, tokenizer = load_model("tiny-llama")  # the base, never given an adapter
    text = chat_text([{"role": "user", "content": "Hi"}])
    from loralab.eval.generate import eos_ids

    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    out = base.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=N, do_sample=False,
                        eos_token_id=eos_ids(base, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    base_reply = tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True)

    chat = session(tiny_adapted)
    assert chat.command("/adapter off").message.startswith("adapter off")
    assert chat.reply("Hi") == base_reply
    chat.reset()
    assert chat.command("/adapter on").message == "adapter on"
    adapted = chat.reply("Hi")
    assert adapted == greedy(text, N) and adapted != base_reply
    assert loralab.active_adapters(tiny_adapted[0]) == ("default",)  # switching off left the model as it was


def test_reset_and_system_change_the_prompt_the_model_sees(tiny_adapted, chat_text):
    chat = session(tiny_adapted)
    first = chat.prompt("Hi")
    chat.reply("Hi")
    assert chat.prompt("Hi") != first
    assert chat.command("/reset").message == "conversation cleared"
    assert chat.turns == [] and chat.prompt("Hi") == first
    assert chat.command("/system You are terse.").message == "system prompt set: You are terse."
    assert chat.messages("Hi") == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]
    assert chat.prompt("Hi") == chat_text(chat.messages("Hi")) and "You are terse." in chat.prompt("Hi")
    chat.reply("Hi")
    assert "stays" in chat.command("/reset").message and chat.system == "You are terse."
    assert chat.command("/system").message == "system prompt removed" and chat.prompt("Hi") == first


def test_commands_without_an_adapter_and_unknown_ones(tiny_adapted):
    from loralab.models import load_model

    model, tokenizer = load_model("tiny-llama")
    chat = ChatSession(model, tokenizer, GenerationSettings(max_new_tokens=2))
    assert "no adapter is loaded" in chat.command("/adapter off").message
    assert chat.command("/frobnicate").message.startswith("unknown command /frobnicate")
    assert chat.command("/adapter maybe").message.startswith("no adapter")
    assert session(tiny_adapted).command("/adapter maybe").message == "usage: /adapter off|on"
    assert chat.command("/quit").quit and chat.command("/exit").quit


def test_sampling_is_seeded(tiny_adapted):
    replies = [session(tiny_adapted, temperature=1.0, seed=3).reply("Hi") for _ in range(2)]
    assert replies[0] == replies[1]


def test_a_conversation_longer_than_the_context_is_refused(tiny_adapted):
    chat = ChatSession(*tiny_adapted, GenerationSettings(max_new_tokens=250))  # tiny-llama: 256 positions
    with pytest.raises(ConfigError, match="context of 256; /reset"):
        chat.reply("Hi")
    assert chat.turns == []


def test_characters_split_across_tokens_are_shown_whole(tiny_adapted):
    tokenizer = tiny_adapted[1]
    text = "naïve 日本語 🤗🦙 café"
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert any("\ufffd" in tokenizer.decode(tokens[:i]) for i in range(1, len(tokens)))  # some prefix cuts a character
    pieces: list[str] = []
    stream = _TextStream(tokenizer, pieces.append)
    stream.put(torch.tensor([[1, 2, 3]]))  # the prompt, not shown
    for token in tokens:
        stream.put(torch.tensor([token]))
    stream.finish(text)
    assert "".join(pieces) == text and not any("\ufffd" in piece for piece in pieces)


def test_the_terminal_loop(tiny_adapted):
    """Commands, replies, a reply stopped by Ctrl-C (dropped from the conversation), then end of input."""
    chat = session(tiny_adapted)
    lines = iter(["/help", "", "Hi", "/system Be brief.", "interrupt me", "/adapter off"])

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    original = chat.reply

    def reply(text, on_text=None):
        if text == "interrupt me":
            on_text("partial")
            raise KeyboardInterrupt
        return original(text, on_text)

    chat.reply = reply
    out = io.StringIO()
    run_chat(chat, banner="hello", read=read, out=out)
    screen = out.getvalue()
    assert screen.startswith("hello\ncommands: /reset") and "system prompt set: Be brief." in screen
    assert "[reply stopped; it is not part of the conversation]" in screen and "adapter off" in screen
    assert [turn["content"] for turn in chat.turns if turn["role"] == "user"] == ["Hi"]


def test_quit_ends_the_loop(tiny_adapted):
    lines = iter(["/quit", "never read"])
    run_chat(session(tiny_adapted), read=lambda prompt: next(lines), out=io.StringIO())
    assert next(lines) == "never read"


# -- what MODEL and --adapter name -------------------------------------------------------------
def _run(folder, method: str, **sections):
    folder.mkdir(parents=True)
    recipe = {"name": folder.name, "model": {"name": "tiny-llama"}, "method": method, "data": {"task": "arith"}, **sections}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return folder


def test_a_run_folder_means_its_adapter_on_its_base(tmp_path, adapter_dir, greedy, chat_text):
    import shutil

    run = _run(tmp_path / "run", "lora", lora={"r": 4, "alpha": 8, "target_modules": ["q_proj"]})
    with pytest.raises(ConfigError, match="no final adapter yet"):
        choose(str(run))
    shutil.copytree(adapter_dir, run / "adapter")
    choice = choose(str(run))
    assert (choice.model, choice.adapter, choice.run.path) == ("tiny-llama", run / "adapter", run)
    assert choose("tiny-llama", str(run)).adapter == run / "adapter"  # --adapter RUN
    with pytest.raises(ConfigError, match="not both"):
        choose(str(run), str(adapter_dir))
    model, tokenizer = load_choice(choice)
    reply = ChatSession(model, tokenizer, GenerationSettings(max_new_tokens=N)).reply("Hi")
    assert reply == greedy(chat_text([{"role": "user", "content": "Hi"}]), N)


def test_a_full_run_means_its_model(tmp_path):
    from loralab.models import load_model

    run = _run(tmp_path / "full", "full")
    model, tokenizer = load_model("tiny-llama")
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    choice = choose(str(run))
    assert (choice.model, choice.adapter, choice.run) == (str(run / "model"), None, None)
    with pytest.raises(ConfigError, match="has no adapter"):
        choose("tiny-llama", str(run))


def test_missing_model_or_adapter_fails_before_loading(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        choose(str(tmp_path / "no-model"))
    with pytest.raises(AdapterFileError, match="does not exist"):
        choose("tiny-llama", str(tmp_path / "no-adapter"))
