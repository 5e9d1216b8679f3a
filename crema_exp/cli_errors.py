"""User errors at the command line: one clear message, no traceback, no empty run folder.

A mistake the user can fix (a config value, a missing corpus, a bad checkpoint, SSL weights that
cannot be downloaded) is printed as ``error: <message>`` on stderr and ends the job with exit code 2.
``HYDRA_FULL_ERROR=1`` re-raises it for the full traceback. A single run that fails this way before
doing any work leaves no run folder behind (its folder holds only Hydra's bookkeeping), so
``compare`` never lists it. In a multirun sweep the error is re-raised instead: the sweeper
records every trial, failed ones included, and the trial folder stays.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from crema_exp.config import ConfigError
from crema_exp.data.corpus import CorpusError
from crema_exp.data.layouts import LayoutError
from crema_exp.data.listener_votes import VotesError
from crema_exp.data.splits import SplitError
from crema_exp.data.tables import TableError
from crema_exp.disk_space import DiskFullError
from crema_exp.features.ssl_weights import SSLWeightsError
from crema_exp.features.store import StoreError
from crema_exp.training.checkpoint import CheckpointError

USER_ERRORS = (ConfigError, CorpusError, LayoutError, SplitError, TableError, SSLWeightsError,
               StoreError, DiskFullError, CheckpointError, VotesError, FileNotFoundError)
EXIT_USER_ERROR = 2
# What a run folder holds before the job has done anything: Hydra's config copy, the job's log
# file and status.json.
BOOKKEEPING = {".hydra", "status.json"}

T = TypeVar("T")
log = logging.getLogger(__name__)


def user_errors(task: Callable[..., T]) -> Callable[..., T]:
    """Decorate a ``@hydra.main`` task function (apply it below ``@hydra.main``)."""

    @functools.wraps(task)
    def run(cfg):
        try:
            return task(cfg)
        except USER_ERRORS as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
                raise
            _remove_untouched_run_dir()
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return run


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _remove_untouched_run_dir() -> None:
    """Delete this run's output folder when it holds nothing but Hydra's bookkeeping."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if not run_dir.is_dir() or run_dir.resolve() == Path.cwd().resolve():
        return
    allowed = BOOKKEEPING | {f"{hydra_cfg.job.name}.log"}
    if all(entry.name in allowed for entry in run_dir.iterdir()):
        _close_log_files_in(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        _remove_empty_parents(run_dir.parent)


def _close_log_files_in(folder: Path) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder:
            root.removeHandler(handler)
            handler.close()


def _remove_empty_parents(folder: Path) -> None:
    """Folders this run alone created (outputs/train/<date>) go too, up to the working directory."""
    cwd = Path.cwd().resolve()
    folder = folder.resolve()
    while folder != cwd and cwd in folder.parents:
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            return
        folder = folder.parent
