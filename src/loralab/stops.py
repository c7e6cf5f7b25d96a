"""Stopping a run cleanly on Ctrl-C (SIGINT), SIGTERM (schedulers, ``timeout``) or SIGHUP (a closed terminal).

While :class:`StopSignals` is active in the main thread, each of these signals raises
:class:`Stopped` (a ``KeyboardInterrupt``, so no ``except Exception`` swallows it) at the
point the program has reached — unless a *held* section is open (between :meth:`hold` and
:meth:`release`: an optimiser update and its record, a checkpoint write). There the signal
waits and is raised by the :meth:`release` that closes the section. So work is stopped
either before an optimiser step changes anything, or after the step is complete and recorded,
never in between. Outside the main thread (where Python cannot install handlers) nothing
is installed and signals keep their default behaviour.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which (the exit status is 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signame = signal.Signals(signum).name


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Stopped` from now on, as Ctrl-C raises KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_stopped)


#: the stop signals :func:`stop_on_signals` turned into Stopped, in order: a Stopped raised where Python
#: cannot pass it on (a callback, a destructor: "Exception ignored in ...") is lost, the signal is not
received: list[int] = []


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    received.append(signum)
    raise Stopped(signum)


class SignalHandlers:
    """Context manager: route the stop signals to ``self._on_signal`` while active (main thread only), then
    restore the previous handlers. Subclasses say what a signal does."""

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError


class StopSignals(SignalHandlers):
    """Context manager: turn stop signals into :class:`Stopped`, deferred inside held sections."""

    def __init__(self) -> None:
        super().__init__()
        self._held = 0
        self._pending: int | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self._pending = self._pending or signum
            return
        raise Stopped(signum)

    def hold(self) -> None:
        """Open a held section: a stop signal now waits for :meth:`release`."""
        self._held += 1

    def release(self, raise_pending: bool = True) -> None:
        """Close a held section; the outermost release raises a signal that arrived meanwhile
        (``raise_pending=False``: drops it — the caller is already stopping)."""
        self._held = max(0, self._held - 1)
        if self._held == 0 and self._pending is not None:
            signum, self._pending = self._pending, None
            if raise_pending:
                raise Stopped(signum)

    @property
    def pending(self) -> int | None:
        """A signal received inside a held section and not yet raised."""
        return self._pending
