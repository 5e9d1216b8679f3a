"""Consolidation: part files become one contiguous float16 array per stream.

Parts are streamed one at a time into a preallocated temp file with ordinary writes (never all
layers in RAM; a full disk raises an error instead of the SIGBUS a memory map would get), and every
file is renamed into place whole. Rows follow the chunk order (clips by duration).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.atomic import temp_path, write_csv_atomic
from crema_exp.data import write_skipped
from crema_exp.disk_space import enospc_names, preallocate, require_free
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
    require_free(root, sum(_npy_bytes(int(lengths.sum()), dims[s]) for s in streams),
                 what="consolidating its arrays")
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


def _npy_header(frames: int, dim: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(np.float16).str,
                                                  "fortran_order": False, "shape": (frames, dim)})
    return buffer.getvalue()


def _npy_bytes(frames: int, dim: int) -> int:
    return len(_npy_header(frames, dim)) + frames * dim * np.dtype(np.float16).itemsize


def _write_stream(path: Path, index: pd.DataFrame, parts: dict[int, Path], stream: str,
                  dim: int) -> None:
    """Copy one stream part by part into a preallocated temp .npy, then rename."""
    total = int(index["length"].sum())
    tmp = temp_path(path)
    try:
        with enospc_names(path, _npy_bytes(total, dim), partial=tmp), open(tmp, "wb") as out:
            header = _npy_header(total, dim)
            preallocate(out.fileno(), _npy_bytes(total, dim))
            out.write(header)
            position = 0
            for number in index["part"].drop_duplicates():
                with np.load(parts[int(number)]) as part:
                    frames = part[f"stream.{stream}"]
                if frames.shape[1] != dim:
                    raise StoreError(f"{parts[int(number)]}: stream {stream!r} has dim "
                                     f"{frames.shape[1]}, expected {dim}")
                out.write(np.ascontiguousarray(frames, dtype=np.float16).tobytes())
                position += len(frames)
            if position != total:
                raise StoreError(f"{path}: wrote {position} frames, index says {total}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_side_files(root: Path, manifest: pd.DataFrame, skipped: pd.DataFrame) -> None:
    """manifest.csv (without the split: that is a view's business) and skipped.csv."""
    write_csv_atomic(root / MANIFEST, manifest.drop(columns=["split"], errors="ignore"))
    write_skipped(skipped, root / SKIPPED)
