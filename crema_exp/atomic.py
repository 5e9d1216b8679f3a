"""Atomic file writes: a reader never sees a half-written file, and an interrupted write leaves
only a temp file that the next run removes."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from crema_exp.disk_space import enospc_names

_TEMP_MARK = ".tmp-"


def temp_path(path: Path) -> Path:
    """A per-process temporary name next to ``path`` (same filesystem, so os.replace is atomic)."""
    return path.with_name(f".{path.name}{_TEMP_MARK}{os.getpid()}")


def remove_temp_files(root: Path) -> None:
    """Delete temporary files that an interrupted write left under ``root``."""
    for leftover in root.rglob(f".*{_TEMP_MARK}*"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb",
                 size_hint: int | None = None) -> Iterator[Any]:
    """Open a temp file for writing; on success fsync it and rename it to ``path``.

    A full disk raises DiskFullError naming ``path`` (and ``size_hint``, the expected size, when
    given); the temp file is removed either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with enospc_names(path, size_hint, partial=tmp), \
                open(tmp, mode, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    return Path(path)


def write_csv_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``frame`` without its index."""
    with atomic_write(path, "w") as f:
        frame.to_csv(f, index=False)
    return Path(path)
