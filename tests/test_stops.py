"""StopSignals: a real signal raises Stopped at once, or at the end of a held section; handlers are restored."""

import os
import signal

import pytest

from loralab.stops import StopSignals, Stopped


def test_a_signal_outside_a_held_section_stops_at_once():
    with pytest.raises(Stopped) as stop, StopSignals():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):  # the handler runs between bytecodes, long before this ends
            pass
        pytest.fail("the signal did not stop the block")
    assert stop.value.signum == signal.SIGTERM and stop.value.signame == "SIGTERM"


def test_a_signal_in_a_held_section_waits_for_the_outermost_release():
    done = []
    with pytest.raises(Stopped) as stop, StopSignals() as stops:
        stops.hold()
        stops.hold()
        os.kill(os.getpid(), signal.SIGHUP)
        done.append("inner work")
        stops.release()  # still held by the outer section
        done.append("outer work")
        stops.release()
        pytest.fail("release did not raise the pending signal")
    assert done == ["inner work", "outer work"] and stop.value.signum == signal.SIGHUP


def test_release_without_raising_drops_the_signal_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stops:
        stops.hold()
        os.kill(os.getpid(), signal.SIGINT)
        assert stops.pending == signal.SIGINT
        stops.release(raise_pending=False)
        assert stops.pending is None
    assert signal.getsignal(signal.SIGTERM) is before
