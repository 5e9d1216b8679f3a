"""Progress within an epoch: a bar on a terminal, rate-limited log lines everywhere else."""

import io
import logging

from crema_exp.training.progress import EpochProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_without_a_terminal_a_log_line_comes_at_most_once_per_interval(caplog):
    clock, stream = Clock(), io.StringIO()
    progress = EpochProgress(epoch=3, batches=10, clips=320, interval_s=30.0, stream=stream,
                             clock=clock)
    with caplog.at_level(logging.INFO, logger="crema_exp.training.progress"):
        for _ in range(10):  # a batch of 32 clips every 8 s: lines at 32, 64 s (not 40, 48, ...)
            clock.now += 8.0
            progress.update(32)
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "epoch 3: batch 4/10, 128/320 clips, 4.0 clips/s, ETA 0:00:48",
        "epoch 3: batch 8/10, 256/320 clips, 4.0 clips/s, ETA 0:00:16",
    ]
    assert stream.getvalue() == ""  # no bar drawn into a log file


def test_on_a_terminal_a_bar_shows_batches_clips_per_second_and_eta(caplog):
    stream = Terminal()
    with caplog.at_level(logging.INFO, logger="crema_exp.training.progress"):
        progress = EpochProgress(epoch=2, batches=3, clips=70, interval_s=0.0, stream=stream)
        for clips in (32, 32, 6):
            progress.update(clips)
        progress.close()
    drawn = stream.getvalue()
    assert "epoch 2" in drawn and "clip/s" in drawn and "batch 1/3" in drawn and "32/70" in drawn
    assert "<" in drawn  # elapsed<remaining: the ETA
    assert not caplog.records  # the bar replaces the log lines
