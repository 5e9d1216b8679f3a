"""Open one Optuna study from many processes at once: heartbeats on, creation races retried.

Optuna 2.10 creates its tables and version row on first connection; two processes doing that at
the same moment get IntegrityError / "table already exists", and create-or-load can race too.
Both are retried after a short random pause. The study is returned on the uncached storage: the
cached one keeps its own copy of the trials this process asked for, so it would not see a train
job (in another process) mark its trial pruned or failed.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage, RDBStorage
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

log = logging.getLogger(__name__)

ATTEMPTS = 8
SQLITE_BUSY_TIMEOUT_S = 60  # wait for another writer instead of failing with "database is locked"


def rdb_storage(url: str, *, heartbeat_interval: int | None = None,
                grace_period: int | None = None) -> RDBStorage:
    """An RDBStorage (with Optuna's trial heartbeat when ``heartbeat_interval`` is set)."""
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # check_same_thread: heartbeat threads open connections that the main thread may close
        # (at exit, e.g. after SIGTERM); sqlite3 would refuse and log a traceback.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    return _retry(lambda: RDBStorage(url, engine_kwargs=engine_kwargs,
                                     heartbeat_interval=heartbeat_interval,
                                     grace_period=grace_period), f"connect to {url}")


def create_or_load_study(*, study_name: str, storage: BaseStorage | None, sampler: Any,
                         pruner: Any, directions: list[str]) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (False: it existed, e.g. another worker's)."""

    def attempt() -> tuple[optuna.Study, bool]:
        try:
            study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                        pruner=pruner, directions=directions)
            created = True
        except DuplicatedStudyError:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                      pruner=pruner)
            created = False
        return uncached(study), created

    return _retry(attempt, f"open study {study_name!r}")


def uncached(study: optuna.Study) -> optuna.Study:
    """Make ``study`` read and write its database directly (see the module docstring)."""
    study._storage = getattr(study._storage, "_backend", study._storage)
    return study


def _retry(action, what: str):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except (IntegrityError, OperationalError, DBAPIError, KeyError) as exc:
            # KeyError: the study row appeared between create's duplicate check and load
            if attempt == ATTEMPTS:
                raise
            log.debug("%s: %s (attempt %d), retrying", what, type(exc).__name__, attempt)
            time.sleep(random.uniform(0.05, 0.3) * attempt)
