"""``loralab chat`` in a pseudo-terminal, as a user runs it: type lines, read the screen.

The streamed replies must be transformers' greedy completions of the conversation so far; ``/reset``
empties the conversation, ``/system`` sets the system message, ``/adapter off`` gives the base
model's reply; Ctrl-D and Ctrl-C at the prompt end the chat with status 0 and no stack trace.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal (POSIX)")

N = 8
PROMPT = "you> "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")
STARTUP_S = 180  # importing torch and transformers on a loaded CI machine
REPLY_S = 60


class Terminal:
    """A child process on a pseudo-terminal; ``screen`` is everything it wrote, line ends normalised."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "TERM": "dumb", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: its controlling terminal is the pty
            try:  # as a terminal starts a program: default signal dispositions (Python keeps an inherited SIG_IGN for SIGINT)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                os.execve(sys.executable, [sys.executable, *argv], env)
            finally:
                os._exit(127)
        self.raw = b""
        self.read_to = 0  # how much of the screen the test has consumed
        self.status: int | None = None

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace")).replace("\r", "")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal (it exited)
            data = b""
        self.raw += data
        return bool(data)

    def expect(self, text: str, timeout: float = REPLY_S) -> str:
        """Wait for ``text`` past what was consumed; return the screen up to it and consume through it."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen
            found = screen.find(text, self.read_to)
            if found >= 0:
                before, self.read_to = screen[self.read_to : found], found + len(text)
                return before
            if time.monotonic() > deadline or not self._read(min(1.0, max(0.0, deadline - time.monotonic()))):
                raise AssertionError(f"waited for {text!r}; the screen ends with:\n{screen[-2000:]}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode("utf-8"))

    def say(self, line: str) -> str:
        """Type ``line`` and Enter; what is written between the echoed line and the new line before the next prompt."""
        self.send(line + "\n")
        shown = self.expect("\n" + PROMPT)
        echoed, _, rest = shown.partition("\n")
        assert echoed.endswith(line), shown
        return rest

    def wait(self, timeout: float = REPLY_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.1):  # what it wrote last
                    pass
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"the chat did not exit; the screen ends with:\n{self.screen[-2000:]}")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def chat(adapter_dir):
    terminal = Terminal(["-m", "loralab", "chat", "tiny-llama", "--adapter", str(adapter_dir), "--max-new-tokens", str(N)])
    try:
        banner = terminal.expect(PROMPT, timeout=STARTUP_S)
        assert f"loralab chat: tiny-llama with adapter {adapter_dir}" in banner and "/adapter off|on" in banner
        yield terminal
    finally:
        terminal.close()


def on_screen(text: str) -> str:
    """``text`` as the screen shows it once normalised (carriage returns and escape sequences dropped)."""
    return ANSI.sub("", text).replace("\r", "")


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_a_conversation_on_the_screen(chat, greedy, chat_text):
    history: list[dict] = []

    def turn(text: str, adapter: bool = True, system: str | None = None) -> str:
        """Say ``text``; the reply on the screen must be the greedy completion of the conversation so far."""
        conversation = ([{"role": "system", "content": system}] if system else []) + history + [user(text)]
        expected = greedy(chat_text(conversation), N, adapter)
        assert chat.say(text) == on_screen(expected)  # the streamed reply, then a new line and the prompt
        history.extend([user(text), assistant(expected)])
        return chat_text(conversation)

    turn("Hello there")
    turn("How are you?")  # sees the first exchange
    # a reply that depends on the history, so that the /reset below is visible in the reply itself
    assert greedy(chat_text(history[:2] + [user("How are you?")]), N) != greedy(chat_text([user("How are you?")]), N)

    assert chat.say("/reset") == "conversation cleared"
    history.clear()
    turn("How are you?")  # the prompt the model sees holds this turn alone

    assert chat.say("/system You are a pirate.") == "system prompt set: You are a pirate."
    turn("Hello there", system="You are a pirate.")

    assert chat.say("/adapter off").startswith("adapter off")
    seen = turn("Hello there", adapter=False, system="You are a pirate.")
    assert history[-1]["content"] != greedy(seen, N)  # the base model answered, not the adapted one
    assert chat.say("/adapter on") == "adapter on"
    turn("Bye", system="You are a pirate.")

    chat.send("\x04")  # Ctrl-D at an empty prompt
    assert chat.wait() == 0
    assert "Traceback" not in chat.screen


def test_ctrl_c_at_the_prompt_exits_cleanly(chat):
    # as a person would, a moment after the prompt shows: CPython's readline shows the prompt, then waits
    # for input in select(); a SIGINT that lands in between is only seen at the next key press
    time.sleep(1.0)
    chat.send("\x03")  # Ctrl-C at the prompt
    for attempt in range(3):  # a loaded machine: the key may come before readline waits; a person presses it again
        try:
            status = chat.wait(timeout=10.0)
            break
        except AssertionError:
            if attempt == 2:
                raise
            if attempt == 0:
                chat.send("\x03")
            else:  # the SIGINT the terminal should have sent for the key, sent directly (seen lost in cold CI runs)
                os.kill(chat.pid, signal.SIGINT)
    assert status == 0
    assert "Traceback" not in chat.screen and "KeyboardInterrupt" not in chat.screen

