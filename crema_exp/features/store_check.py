"""Self-checks of a complete feature store, run whenever it is reused.

The build records every data file's size and sha256 in metadata.json. On reuse the cheap checks
(file sizes, index.csv rows against metadata, offsets + lengths against the <stream>.npy shapes;
milliseconds, no array data read) catch a truncated index or array, a lost file and a half-copied
store. Bytes changed in place (a zeroed region) keep every size: only ``verify``, which re-reads
everything and compares sha256, catches those. Views (``views/``) are not part of the store's
content (written after metadata.json, at any time), so they are neither recorded nor checked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crema_exp.features.store import INDEX, METADATA, PARTS, VIEWS, FeatureStore, StoreError

FILES = "files"  # metadata.json key: {relative path: {"bytes": int, "sha256": hex}}
_DATA_SUFFIXES = {".npy", ".csv", ".npz"}


def record_files(root: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every data file of ``root`` (not parts/ or views/), for metadata.json."""
    return {str(p.relative_to(root)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in _DATA_SUFFIXES
            and not p.name.startswith(".") and p.relative_to(root).parts[0] not in (PARTS, VIEWS)}


def check_store(store: FeatureStore, verify: bool = False) -> None:
    """Raise StoreError naming the first damaged file and how to rebuild; ``verify``: sha256 too."""
    files = store.metadata.get(FILES)
    if not files:
        raise damaged(store, store.root / METADATA, "records no file sizes (written by an older "
                      "version of crema-exp)")
    for name, recorded in files.items():
        path = store.root / name
        if not path.is_file():
            raise damaged(store, path, "is missing")
        size = path.stat().st_size
        if size != recorded["bytes"]:
            raise damaged(store, path, f"has {size} bytes, {recorded['bytes']} when it was built "
                          "(truncated or overwritten)")
    _check_index(store)
    if verify:
        for name, recorded in files.items():
            if _sha256(store.root / name) != recorded["sha256"]:
                raise damaged(store, store.root / name, "does not match the sha256 recorded when "
                              "it was built (its bytes changed)")


def damaged(store: FeatureStore, path: Path, problem: str) -> StoreError:
    return StoreError(
        f"{path} {problem}: the feature store {store.root} is damaged. Rebuild it: run the same "
        f"command with rebuild=true, or delete it (`rm -r {store.root}`) and run it again."
    )


def _check_index(store: FeatureStore) -> None:
    index_path = store.root / INDEX
    try:
        index = pd.read_csv(index_path, dtype={"clip_id": str})
        lengths = index["length"].to_numpy(dtype=np.int64)
        offsets = index["offset"].to_numpy(dtype=np.int64)
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise damaged(store, index_path, f"cannot be read ({exc})") from exc
    expected = store.metadata["corpus"]["total"]
    if len(index) != expected["clips"] or index["clip_id"].duplicated().any():
        raise damaged(store, index_path, f"lists {len(index)} clips ("
                      f"{int(index['clip_id'].duplicated().sum())} repeated), "
                      f"{expected['clips']} were stored ({METADATA})")
    if (lengths <= 0).any() or not np.array_equal(offsets, np.cumsum(lengths) - lengths):
        raise damaged(store, index_path, "has offsets that do not follow its lengths")
    frames = int(lengths.sum())
    if frames != expected["frames"]:
        raise damaged(store, index_path, f"covers {frames} frames, {expected['frames']} "
                      "were stored")
    for stream, info in store.metadata["streams"].items():
        array_path = store.root / f"{stream}.npy"
        shape, dtype = _npy_shape(store, array_path)
        if shape != (frames, info["dim"]) or dtype != np.float16:
            raise damaged(store, array_path, f"holds {dtype} {shape}, expected float16 "
                          f"({frames}, {info['dim']}) from {INDEX}")


def _npy_shape(store: FeatureStore, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the .npy header alone (no data read)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    except (OSError, ValueError) as exc:
        raise damaged(store, path, f"has no readable array header ({exc})") from exc
    return tuple(shape), dtype


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
