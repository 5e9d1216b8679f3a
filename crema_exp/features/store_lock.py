"""The build lock of a feature store: one builder, the others wait and say for whom.

An flock on ``<store>.lock`` (the kernel drops it when its holder dies, also on another machine of
a shared cache that supports flock). The file records the holder (pid, host, start time), so that
a waiting process can log who it waits for, and so that a lock whose recorded holder is gone from
this host is taken over at once: a holder's pool workers could keep an inherited descriptor (and
the flock) alive after the holder was SIGKILLed. Takeover replaces the lock file by a new, locked
one; whoever still holds the old file's flock finds its file replaced and starts again.

The lock file stays in place after release (deleting it would race with the next taker). Checks
and replacements of the holder record happen under a short flock on a guard file beside it, so two
processes never both take over, and a new holder never loses its record to a takeover.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
REPEAT_WAIT_MESSAGE_SECONDS = 300.0

_held: set[int] = set()  # descriptors of locks this process holds (closed in forked workers)


@contextlib.contextmanager
def build_lock(path: Path, what: str = "Feature store") -> Iterator[None]:
    """Hold the build lock at ``path`` for the block (waiting, or taking a stale lock over).
    ``what`` names the thing being built in the message a waiting process logs."""
    fd = _acquire(Path(path), what)
    try:
        yield
    finally:
        _held.discard(fd)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody holds it now; the next holder writes its own record
        os.close(fd)  # releases the flock


def close_inherited_locks() -> None:
    """In a forked worker: drop the parent's lock descriptors, so they die with the parent."""
    for fd in list(_held):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


def holder_record() -> dict[str, Any]:
    """Who this process is, as written into a lock file it holds."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot": _boot_id(),
            "process_start": _process_start(os.getpid()),
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a process that has not recorded itself yet"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


def holder_is_gone(holder: dict[str, Any] | None) -> bool:
    """True when ``holder`` ran on this host (same boot) and that process no longer exists.

    A pid reused by another process counts as gone (its start time differs). Holders on other
    hosts are never declared gone: their liveness cannot be checked from here.
    """
    if not holder or holder.get("host") != socket.gethostname():
        return False
    if holder.get("boot") and _boot_id() and holder["boot"] != _boot_id():
        return True  # this machine rebooted since
    pid = int(holder.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    recorded, current = holder.get("process_start"), _process_start(pid)
    return recorded is not None and current is not None and recorded != current


# ---------------------------------------------------------------------------- acquisition


def _acquire(path: Path, what: str) -> int:
    waiting_since = None
    announced = 0.0
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            taken = _take_over_if_stale(path)
            os.close(fd)
            if taken is not None:
                return taken
            holder = _read_holder(path)
            now = time.monotonic()
            if waiting_since is None or now - announced > REPEAT_WAIT_MESSAGE_SECONDS:
                log.info("%s is being built by %s; waiting on %s (this process continues when "
                         "that build finishes)", what, describe(holder), path)
                waiting_since = waiting_since or now
                announced = now
            time.sleep(POLL_SECONDS)
            continue
        with _guard(path):
            if _still_names(path, fd):
                _write_holder(fd)
                _held.add(fd)
                if waiting_since is not None:
                    log.info("Got the build lock %s after %.1f s", path,
                             time.monotonic() - waiting_since)
                return fd
        os.close(fd)  # the file was replaced by a takeover while we got its flock: start again


def _take_over_if_stale(path: Path) -> int | None:
    """Under the guard: if the recorded holder is gone, install a new locked file."""
    with _guard(path):
        holder = _read_holder(path)
        if not holder_is_gone(holder):
            return None
        fd = _locked_replacement(path)
        log.warning("The build lock %s was held by %s, which is gone (killed?); taking it over",
                    path, describe(holder))
        return fd


def _locked_replacement(path: Path) -> int:
    tmp = path.with_name(f".{path.name}.takeover-{os.getpid()}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_holder(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _held.add(fd)
    return fd


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    """A short flock on ``.<lock name>.guard`` (a file: NFS cannot flock a directory)."""
    fd = os.open(path.with_name(f".{path.name}.guard"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _still_names(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _write_holder(fd: int) -> None:
    record = json.dumps(holder_record()).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, record, 0)


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name may contain spaces
