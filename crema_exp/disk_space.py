"""Disk-full handling: one clear error naming the path, the bytes needed and the bytes free.

A write that runs out of space must fail as an ordinary exception (never SIGBUS from a memory map
into a sparse file), so that atomic writes remove their temp file and the job resumes once space
is freed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator


class DiskFullError(RuntimeError):
    """Not enough free space to write a file (raised instead of a bare ENOSPC or a SIGBUS)."""


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def human(n: int) -> str:
    """Byte count for a message: exact bytes plus a readable size."""
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{n} bytes" if unit == "B" else f"{n} bytes ({size:.1f} {unit})"


def disk_full(path: str | os.PathLike, needed: int | None,
              what: str = "writing it") -> DiskFullError:
    """The error for ``path``: the bytes ``what`` needs (when known) and the bytes free."""
    need = "more than is free" if needed is None else human(needed)
    return DiskFullError(
        f"{path}: disk full: {what} needs {need}, {human(free_bytes(path))} free "
        f"on {_mount_point(Path(path))}. Free some space and run the same command again: "
        "finished work is kept and the job resumes."
    )


def require_free(path: str | os.PathLike, needed: int, what: str = "writing it") -> None:
    """Fail before writing ``needed`` bytes at ``path`` if the filesystem has less free."""
    if free_bytes(path) < needed:
        raise disk_full(path, needed, what)


@contextlib.contextmanager
def enospc_names(path: str | os.PathLike, needed: int | None = None,
                 partial: Path | None = None) -> Iterator[None]:
    """Turn an ENOSPC/EDQUOT raised inside the block into a DiskFullError naming ``path``.

    ``partial`` (the temp file being written) is deleted first, so the free space reported is
    what the user really has.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise disk_full(path, needed) from exc


def preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes for an open file so that a full disk fails here with ENOSPC.

    Filesystems without fallocate support skip the reservation (the ordinary writes that follow
    still fail with ENOSPC rather than SIGBUS).
    """
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    except AttributeError:  # no posix_fallocate on this platform
        pass


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path
