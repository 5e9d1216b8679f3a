"""Consolidation: part files become one contiguous float16 array per stream.

Parts are streamed one at a time into a memory-mapped temp file (never all layers in RAM), and
every file is renamed into place whole. Rows follow the chunk order (clips by duration).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.atomic import temp_path, write_csv_atomic
from crema_exp.data import write_skipped
from crema_exp.features.parts import Chunk
from crema_exp.features.store import INDEX, INDEX_COLUMNS, MANIFEST, PARTS, SKIPPED, StoreError


@dataclass
class Consolidated:
    manifest_used: pd.DataFrame  # manifest rows that were stored, plus "frames"
    skipped: pd.DataFrame  # path, reason (extraction stage)
    index: pd.DataFrame  # INDEX_COLUMNS
    dims: dict[str, int]


def consolidate(root: Path, chunks: list[Chunk], manifest: pd.DataFrame,
                 streams: list[str]) -> Consolidated:
    """Stream parts into <stream>.npy + index.csv, one part and one stream at a time."""
    parts = {c.number: root / PARTS / c.part_name for c in chunks}
    indices: list[pd.DataFrame] = []
    skipped_rows = []
    for chunk in chunks:
        with np.load(parts[chunk.number]) as part:
            skipped_rows += list(zip(part["skipped_path"].tolist(),
                                     part["skipped_reason"].tolist()))
            indices.append(pd.DataFrame({"clip_id": part["clip_id"].tolist(),
                                         "length": part["length"], "part": chunk.number}))
    index = pd.concat(indices, ignore_index=True)
    if index.empty:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped_rows[:5])
        raise StoreError(f"no clip could be extracted for {root} ({reasons})")
    lengths = index["length"].to_numpy(dtype=np.int64)
    index["offset"] = np.cumsum(lengths) - lengths
    dims = _stream_dims(parts[int(index["part"].iloc[0])], streams)
    for stream in streams:
        _write_stream(root / f"{stream}.npy", index, parts, stream, dims[stream])
    write_csv_atomic(root / INDEX, index[INDEX_COLUMNS])
    rows = manifest.set_index("clip_id").loc[index["clip_id"]].reset_index()
    return Consolidated(
        manifest_used=rows.assign(frames=lengths),
        skipped=pd.DataFrame(skipped_rows, columns=["path", "reason"]),
        index=index[INDEX_COLUMNS],
        dims=dims,
    )


def _stream_dims(part_path: Path, streams: list[str]) -> dict[str, int]:
    with np.load(part_path) as part:
        return {s: int(part[f"stream.{s}"].shape[1]) for s in streams}


def _write_stream(path: Path, index: pd.DataFrame, parts: dict[int, Path], stream: str,
                  dim: int) -> None:
    """Copy one stream part by part into a memory-mapped temp file, then rename."""
    total = int(index["length"].sum())
    tmp = temp_path(path)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(total, dim))
        position = 0
        for number in index["part"].drop_duplicates():
            with np.load(parts[int(number)]) as part:
                frames = part[f"stream.{stream}"]
            if frames.shape[1] != dim:
                raise StoreError(f"{parts[int(number)]}: stream {stream!r} has dim "
                                 f"{frames.shape[1]}, expected {dim}")
            out[position:position + len(frames)] = frames
            position += len(frames)
        if position != total:
            raise StoreError(f"{path}: wrote {position} frames, index says {total}")
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_side_files(root: Path, manifest: pd.DataFrame, skipped: pd.DataFrame) -> None:
    """manifest.csv (without the split: that is a view's business) and skipped.csv."""
    write_csv_atomic(root / MANIFEST, manifest.drop(columns=["split"], errors="ignore"))
    write_skipped(skipped, root / SKIPPED)
