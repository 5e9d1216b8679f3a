"""Consolidation: part files become one contiguous float16 array per split and stream.

Parts are streamed one at a time into a preallocated temp file with ordinary writes (never all
layers in RAM; a full disk raises an error instead of the SIGBUS a memory map would get), the train
split's moments are accumulated on the way, and every file is renamed into place whole.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.atomic import atomic_write, temp_path, write_csv_atomic
from crema_exp.data import save_splits, write_skipped
from crema_exp.disk_space import enospc_names, preallocate, require_free
from crema_exp.features.normalisation import RunningMoments, save_normalisation
from crema_exp.features.parts import SPLIT_ORDER, Chunk
from crema_exp.features.store import (
    INDEX,
    INDEX_COLUMNS,
    MANIFEST,
    NORMALISATION,
    PARTS,
    SKIPPED,
    SPLITS,
    StoreError,
)


@dataclass
class Consolidated:
    manifest_used: pd.DataFrame  # manifest rows that were stored, plus "frames"
    skipped: pd.DataFrame  # path, reason (extraction stage)
    moments: dict[str, RunningMoments]  # train-split statistics per stream
    dims: dict[str, int]


def consolidate(root: Path, chunks: list[Chunk], manifest: pd.DataFrame,
                 streams: list[str]) -> Consolidated:
    """Stream parts into <split>/<stream>.npy + index.csv, one part and one stream at a time."""
    parts = {c.number: root / PARTS / c.part_name for c in chunks}
    indices: dict[str, list[pd.DataFrame]] = {}
    skipped_rows = []
    for chunk in chunks:
        with np.load(parts[chunk.number]) as part:
            skipped_rows += list(zip(part["skipped_path"].tolist(),
                                     part["skipped_reason"].tolist()))
            index = pd.DataFrame({"clip_id": part["clip_id"].tolist(),
                                  "length": part["length"], "part": chunk.number})
        indices.setdefault(chunk.split, []).append(index)
    by_split = {s: pd.concat(indices.get(s, []) or [_EMPTY_INDEX], ignore_index=True)
                for s in SPLIT_ORDER}
    if by_split["train"].empty:
        reasons = "; ".join(f"{p}: {r}" for p, r in skipped_rows[:5])
        raise StoreError(f"no training clip could be extracted for {root} ({reasons})")

    dims = _stream_dims(parts, by_split["train"], streams)
    require_free(root, sum(_npy_bytes(int(index["length"].sum()), dims[stream])
                           for index in by_split.values() for stream in streams),
                 what="consolidating its arrays")
    moments = {s: RunningMoments.empty(dims[s]) for s in streams}
    info = manifest.set_index("clip_id")
    used = []
    for split in SPLIT_ORDER:
        index = by_split[split]
        lengths = index["length"].to_numpy(dtype=np.int64)
        index["offset"] = np.cumsum(lengths) - lengths
        (root / split).mkdir(exist_ok=True)
        for stream in streams:
            moments[stream] = moments[stream].merge(
                _write_stream(root / split / f"{stream}.npy", index, parts, stream, dims[stream],
                              with_moments=split == "train"))
        rows = info.loc[index["clip_id"]].reset_index()
        index["emotion"] = rows["emotion"].to_numpy()
        index["actor"] = rows["actor"].to_numpy()
        write_csv_atomic(root / split / INDEX, index[INDEX_COLUMNS])
        used.append(rows.assign(frames=index["length"].to_numpy()))
    return Consolidated(
        manifest_used=pd.concat(used, ignore_index=True),
        skipped=pd.DataFrame(skipped_rows, columns=["path", "reason"]),
        moments=moments,
        dims=dims,
    )


_EMPTY_INDEX = pd.DataFrame({"clip_id": pd.Series(dtype=str), "length": pd.Series(dtype=np.int64),
                             "part": pd.Series(dtype=np.int64)})


def _stream_dims(parts: dict[int, Path], train_index: pd.DataFrame, streams: list[str]):
    with np.load(parts[int(train_index["part"].iloc[0])]) as part:
        return {s: int(part[f"stream.{s}"].shape[1]) for s in streams}


def _npy_header(frames: int, dim: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(np.float16).str,
                                                  "fortran_order": False, "shape": (frames, dim)})
    return buffer.getvalue()


def _npy_bytes(frames: int, dim: int) -> int:
    return len(_npy_header(frames, dim)) + frames * dim * np.dtype(np.float16).itemsize


def _write_stream(path: Path, index: pd.DataFrame, parts: dict[int, Path], stream: str, dim: int,
                  with_moments: bool) -> RunningMoments:
    """Copy one stream of a split part by part into a preallocated temp .npy, then rename."""
    total = int(index["length"].sum())
    tmp = temp_path(path)
    moments = RunningMoments.empty(dim)
    try:
        with enospc_names(path, _npy_bytes(total, dim), partial=tmp), open(tmp, "wb") as out:
            header = _npy_header(total, dim)
            preallocate(out.fileno(), len(header) + total * dim * np.dtype(np.float16).itemsize)
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
                if with_moments:
                    moments = moments.merge(RunningMoments.from_frames(frames))
            if position != total:
                raise StoreError(f"{path}: wrote {position} frames, index says {total}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return moments


def write_side_files(root: Path, manifest: pd.DataFrame, skipped: pd.DataFrame,
                      result: Consolidated, streams: list[str]) -> None:
    with atomic_write(root / NORMALISATION) as f:
        save_normalisation(f, result.moments)
    write_csv_atomic(root / MANIFEST, manifest)
    write_skipped(skipped, root / SKIPPED)
    save_splits(result.manifest_used, root / SPLITS)  # the clips actually stored, per split
