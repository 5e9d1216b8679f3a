"""The corpus: discover clips, check their audio, attach actor sex and splits -> one manifest.

Bad clips never stop a run: each goes to ``Corpus.skipped`` with its reason. Only a corpus with
no usable clip (or a folder that is not a corpus) raises CorpusError, before any work starts.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from hydra.utils import to_absolute_path

from crema_exp.atomic import write_csv_atomic
from crema_exp.data.audio import AudioError, check_clip
from crema_exp.data.layouts import (
    LAYOUTS,
    Candidate,
    LayoutError,
    demographics_file,
    detect_layout,
    discover_official,
    discover_split_folders,
)
from crema_exp.data.scan_cache import cache_file, measure_all
from crema_exp.data.splits import SPLITS, SplitError, assign_splits
from crema_exp.data.tables import TableError, read_sexes

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "clip_id", "actor", "sentence", "emotion", "level", "sex", "split",
                    "duration")
SKIPPED_COLUMNS = ("path", "reason")


class CorpusError(ValueError):
    """No usable corpus at the configured place; the message names the folder and the problem."""


@dataclass
class Corpus:
    manifest: pd.DataFrame  # one row per usable clip, MANIFEST_COLUMNS, sorted by clip_id
    skipped: pd.DataFrame  # path, reason
    root: Path
    layout: str  # official | split_folders


def load_corpus(data_cfg, paths_cfg) -> Corpus:
    """Build the corpus ``data_cfg`` describes (generating the demo corpus for ``synthetic``)."""
    if data_cfg.name == "synthetic":
        from crema_exp.data.synthetic import ensure_demo_corpus  # generator only when needed

        demo_dir = Path(to_absolute_path(paths_cfg.demo_dir))
        root = Path(ensure_demo_corpus(data_cfg.synthetic, demo_dir))
        layout = "official"
    elif data_cfg.name == "crema_d":
        if not data_cfg.root:
            raise CorpusError("data.root is not set: use data.root=/path/to/CREMA-D")
        root = Path(to_absolute_path(data_cfg.root))
        layout = data_cfg.layout
    else:
        raise CorpusError(f"data.name={data_cfg.name!r}: expected synthetic or crema_d")
    scan_cache = cache_file(to_absolute_path(paths_cfg.cache_dir), root)
    return read_corpus(root, layout, data_cfg, scan_cache)


def read_corpus(root: Path, layout: str, data_cfg, scan_cache: Path | None = None) -> Corpus:
    """Read the corpus folder ``root`` in ``layout`` (auto | official | split_folders).

    ``scan_cache`` keeps each file's measurements for the next scan (see data/scan_cache.py).
    """
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist (data.root)")
    try:
        layout = detect_layout(root) if layout == "auto" else layout
        if layout not in LAYOUTS:
            raise CorpusError(f"data.layout={layout!r}: expected auto, {' or '.join(LAYOUTS)}")
        found = discover_official(root) if layout == "official" else discover_split_folders(root)
        sexes = _read_sexes(root)
    except (LayoutError, TableError) as exc:
        raise CorpusError(str(exc)) from exc
    usable, skipped = _inspect(found.candidates, data_cfg.min_duration, scan_cache)
    skipped = found.skipped + skipped
    if not usable:
        raise CorpusError(f"no usable clip in {root} ({layout} layout): {_summary(skipped)}")
    manifest = _manifest(usable, sexes)
    manifest["split"] = _splits(manifest, layout, data_cfg, root)
    empty = [split for split in SPLITS if not (manifest["split"] == split).any()]
    if empty:
        raise CorpusError(f"{root}: no usable clip in the {' and '.join(empty)} split(s); "
                          f"a run needs {', '.join(SPLITS)} clips")
    skipped_frame = pd.DataFrame(skipped, columns=list(SKIPPED_COLUMNS)).sort_values(
        "path", ignore_index=True)
    log.info("Corpus %s (%s layout): %d clips, %d actors; skipped %d%s", root, layout,
             len(manifest), manifest["actor"].nunique(), len(skipped_frame),
             f" ({_summary(skipped)})" if skipped else "")
    return Corpus(manifest=manifest, skipped=skipped_frame, root=root, layout=layout)


def _read_sexes(root: Path) -> dict[int, str]:
    path = demographics_file(root)
    return read_sexes(path) if path is not None else {}


def _inspect(candidates: list[Candidate], min_duration: float, scan_cache: Path | None):
    """Measure every candidate (cached); return [(candidate, duration)] and [(path, reason)]."""
    usable, skipped = [], []
    measured = measure_all([c.path for c in candidates], scan_cache)
    for candidate, info in zip(candidates, measured):
        try:
            if isinstance(info, AudioError):
                raise info
            usable.append((candidate, check_clip(candidate.path, info, min_duration).duration))
        except AudioError as exc:
            skipped.append((str(candidate.path), exc.reason))
    return usable, skipped


def _manifest(usable: list[tuple[Candidate, float]], sexes: dict[int, str]) -> pd.DataFrame:
    rows = [
        dict(path=str(c.path), clip_id=c.clip_id, actor=c.actor, sentence=c.sentence,
             emotion=c.emotion, level=c.level, sex=sexes.get(c.actor, ""), split=c.split,
             duration=duration)
        for c, duration in usable
    ]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    # nullable: pre-split clips with their own names may have no actor (labels.csv without one)
    frame = frame.astype({"actor": "Int64", "duration": "float64"})
    return frame.sort_values("clip_id", ignore_index=True)


def _splits(manifest: pd.DataFrame, layout: str, data_cfg, root: Path) -> pd.Series:
    if layout == "split_folders":
        if data_cfg.fold is not None:
            raise CorpusError(f"{root}: data.fold needs the official layout (the split_folders "
                              "layout fixes the splits by its folders)")
        leaking = manifest.groupby("actor")["split"].nunique()
        if (leaking > 1).any():
            log.warning("%s: actors %s appear in more than one split folder (not actor-disjoint)",
                        root, sorted(leaking[leaking > 1].index.tolist()))
        return manifest["split"]
    actor_sex = manifest.groupby("actor")["sex"].first().to_dict()
    try:
        split_of_actor = assign_splits(actor_sex, data_cfg.split, data_cfg.fold)
    except SplitError as exc:
        raise CorpusError(f"{root}: {exc}") from exc
    return manifest["actor"].map(split_of_actor)


def _summary(skipped: list[tuple[str, str]]) -> str:
    """'3 x empty file; 1 x silent' (reasons grouped by the text before their details)."""
    if not skipped:
        return "no files found"
    counts = Counter(reason.split(" (")[0] for _, reason in skipped)
    return "; ".join(f"{n} x {reason}" for reason, n in counts.most_common())


def write_skipped(skipped: pd.DataFrame, path: str | Path) -> Path:
    """Write the skipped clips (path, reason) as CSV, atomically: the machine-readable report."""
    return write_csv_atomic(path, skipped[list(SKIPPED_COLUMNS)])
