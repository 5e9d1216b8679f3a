"""No colour escape codes in logs that go to a file or a pipe.

Optuna 2.10 formats its log lines with colorlog unconditionally, so a sweep's output redirected to
a file is full of ``ESC[32m``. Its handler keeps colours on a terminal and gets a plain formatter
otherwise (same layout).
"""

from __future__ import annotations

import logging

OPTUNA_FORMAT = "[%(levelname)1.1s %(asctime)s] %(message)s"


def plain_optuna_logs_when_redirected() -> None:
    import optuna  # noqa: F401  (importing optuna installs its handler on the "optuna" logger)

    for handler in logging.getLogger("optuna").handlers:
        stream = getattr(handler, "stream", None)
        coloured = hasattr(handler.formatter, "log_colors")  # a colorlog.ColoredFormatter
        if coloured and not (stream is not None and stream.isatty()):
            handler.setFormatter(logging.Formatter(OPTUNA_FORMAT))
