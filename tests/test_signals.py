"""A SIGTERM during a deferred block (a write to the study) waits for the block's end."""

import os
import signal

import pytest

from crema_exp.training.signals import JobInterrupted, signals_deferred, signals_raise


def test_a_signal_outside_a_deferred_block_raises_at_once():
    with pytest.raises(JobInterrupted) as raised, signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # not reached: the handler raises first (pause would wait forever)
    assert raised.value.signal_name == "SIGTERM"


def test_a_signal_inside_a_deferred_block_raises_when_the_block_ends():
    finished = []
    with pytest.raises(JobInterrupted) as raised, signals_raise():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("the write")  # runs to its end
        finished.append("after the block")  # not reached
    assert finished == ["the write"] and raised.value.signal_name == "SIGTERM"
