"""The optional CSV side tables of a corpus: ``labels.csv`` and ``VideoDemographics.csv``.

labels.csv column spellings (case-insensitive): clip column ``file``, ``filename``, ``path``,
``clip``, ``clip_id`` or ``name`` (values with or without folders and the ``.wav`` extension);
label column ``label``, ``emotion`` or ``class`` (code ``ANG`` or word ``anger``/``Angry``); an
optional ``actor``/``speaker`` column supplies the actor of clips whose names are not CREMA-D names.
Other columns (a ``split`` column, for example) are ignored: splits come from the folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

import pandas as pd

CLIP_COLUMNS = ("file", "filename", "path", "clip", "clip_id", "name")
LABEL_COLUMNS = ("label", "emotion", "class")
_SEXES = {"male": "Male", "m": "Male", "female": "Female", "f": "Female"}
ACTOR_COLUMNS = ("actor", "actor_id", "actorid", "speaker", "speaker_id")


class TableError(ValueError):
    """A side table that cannot be read; the message names the file."""


@dataclass(frozen=True)
class LabelEntry:
    label: str  # raw text, parsed later so a bad value skips one clip, not the corpus
    actor: int | None


def clip_key(value: str) -> str:
    """``train/1001_DFA_ANG_XX.wav`` -> ``1001_DFA_ANG_XX``: the file stem labels are matched on."""
    name = PurePath(str(value).strip().replace("\\", "/")).name
    return name[:-4] if name.lower().endswith(".wav") else name


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableError(f"{path}: cannot read as CSV ({exc})") from exc


def _find_column(frame: pd.DataFrame, spellings: tuple[str, ...]) -> str | None:
    by_lower = {str(column).strip().lower(): column for column in frame.columns}
    return next((by_lower[name] for name in spellings if name in by_lower), None)


def read_labels(path: Path) -> dict[str, LabelEntry]:
    """Return labels keyed by clip stem; raise TableError when the columns cannot be identified."""
    frame = _read_csv(path)
    clip_column = _find_column(frame, CLIP_COLUMNS)
    label_column = _find_column(frame, LABEL_COLUMNS)
    if clip_column is None or label_column is None:
        raise TableError(
            f"{path}: needs a clip column ({'/'.join(CLIP_COLUMNS)}) and a label column "
            f"({'/'.join(LABEL_COLUMNS)}); found columns {list(frame.columns)}"
        )
    actor_column = _find_column(frame, ACTOR_COLUMNS)
    entries: dict[str, LabelEntry] = {}
    for row_number, values in enumerate(frame.to_dict("records"), start=2):
        key = clip_key(values[clip_column])
        if not key:
            continue
        actor = None
        if actor_column is not None and values[actor_column].strip():
            try:
                actor = int(values[actor_column])
            except ValueError as exc:
                raise TableError(
                    f"{path}, line {row_number}: actor {values[actor_column]!r} is not an integer"
                ) from exc
        entry = LabelEntry(values[label_column].strip(), actor)
        if key in entries and entries[key] != entry:
            raise TableError(f"{path}: clip {key!r} is listed twice with different labels")
        entries[key] = entry
    return entries


def read_sexes(path: Path) -> dict[int, str]:
    """Map actor id to ``Male``/``Female`` from VideoDemographics.csv (columns ActorID, Sex)."""
    frame = _read_csv(path)
    actor_column = _find_column(frame, ("actorid",))
    sex_column = _find_column(frame, ("sex",))
    if actor_column is None or sex_column is None:
        raise TableError(f"{path}: needs columns ActorID and Sex; found {list(frame.columns)}")
    sexes: dict[int, str] = {}
    for actor, sex in zip(frame[actor_column], frame[sex_column]):
        try:
            sexes[int(actor)] = _SEXES.get(sex.strip().lower(), "")
        except ValueError as exc:
            raise TableError(f"{path}: ActorID {actor!r} is not an integer") from exc
    return sexes
