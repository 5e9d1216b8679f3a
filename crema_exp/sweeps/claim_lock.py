"""A lock that lets one sweep worker at a time count the study's trials and ask for new ones.

Without it, two workers that both see "one trial to go" would both start one and the study would
end with more trials than n_trials. SQLite databases are local files: an flock on ``<db>.lock``.
PostgreSQL: a session advisory lock named after the study, on its own connection. Other databases
get no lock (the count can then overshoot by up to the number of workers minus one).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path
from typing import Iterator

from optuna.storages import RDBStorage
from sqlalchemy import text

from crema_exp.sweeps.storage import SQLITE_PREFIX


@contextlib.contextmanager
def claim_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    url = storage.url
    if url.startswith(SQLITE_PREFIX):
        with open(Path(url[len(SQLITE_PREFIX):]).with_suffix(".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif storage.engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with storage.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    else:
        yield
