"""Finding the clips of a corpus folder in either supported layout, before any audio is read.

- ``official``: ``root/AudioWAV/*.wav`` as released (+ optional ``root/VideoDemographics.csv``);
  labels, actors and sentences come from the names; the project builds the splits. A flat folder
  of official names (the AudioWAV folder itself, or what many downloads unpack to) is read the
  same way, with VideoDemographics.csv looked up beside the clips or one level up.
- ``split_folders``: ``root/{train,validation,test}/`` (files found recursively) + optional
  ``root/labels.csv``; the folders are the splits. A label in labels.csv wins over the name;
  clips missing from labels.csv fall back to their CREMA-D name. Files may have any name when
  labels.csv lists them: its optional actor/speaker column only feeds the disjointness check.

Each problem found here (stray file, bad name, unknown label, duplicate clip) becomes one
(path, reason) entry in ``skipped``; only an unusable folder structure raises LayoutError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crema_exp.data.names import ClipNameError, parse_clip_name, parse_emotion_label
from crema_exp.data.splits import SPLITS
from crema_exp.data.tables import LabelEntry, read_labels

OFFICIAL_AUDIO_DIR = "AudioWAV"
DEMOGRAPHICS_FILE = "VideoDemographics.csv"
LABELS_FILE = "labels.csv"
LAYOUTS = ("official", "split_folders")


class LayoutError(ValueError):
    """A corpus folder whose structure does not match the expected layout."""


@dataclass(frozen=True)
class Candidate:
    """A clip whose metadata is known; its audio is still to be checked."""

    path: Path
    clip_id: str
    actor: int | None  # None: a pre-split clip with its own name and no actor in labels.csv
    sentence: str
    emotion: str
    level: str
    split: str | None  # from the folder (split_folders) or None (assigned later)


@dataclass
class Discovery:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append((str(path), reason))


def official_audio_dir(root: Path) -> Path | None:
    """root/AudioWAV, or root itself when it holds clips with official names; else None."""
    if (root / OFFICIAL_AUDIO_DIR).is_dir():
        return root / OFFICIAL_AUDIO_DIR
    if any(_is_wav(path) and _official_name(path) for path in root.iterdir() if path.is_file()):
        return root
    return None


def demographics_file(root: Path) -> Path | None:
    """VideoDemographics.csv in root or, when root is itself a flat folder of official clips
    (``.../CREMA-D/AudioWAV`` given as root), one level up."""
    places = [root, root.parent] if official_audio_dir(root) == root else [root]
    return next((place / DEMOGRAPHICS_FILE for place in places
                 if (place / DEMOGRAPHICS_FILE).is_file()), None)


def _official_name(path: Path) -> bool:
    try:
        parse_clip_name(path.stem)
    except ClipNameError:
        return False
    return True


def detect_layout(root: Path) -> str:
    """``split_folders`` when root/train etc. exist, ``official`` for root/AudioWAV or a flat
    folder of official names."""
    if not (root / OFFICIAL_AUDIO_DIR).is_dir() and all((root / s).is_dir() for s in SPLITS):
        return "split_folders"
    if official_audio_dir(root) is not None:
        return "official"
    entries = sorted(p.name for p in root.iterdir())[:10]
    raise LayoutError(
        f"{root}: cannot tell the corpus layout: expected {OFFICIAL_AUDIO_DIR}/ or clips with "
        f"official names (official release), or {'/, '.join(SPLITS)}/ folders (pre-split); "
        f"found {entries or 'an empty folder'}"
    )


def _files(folder: Path, recursive: bool) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    # key=parts: the same order as sorting the paths, without PurePath.__lt__'s per-call overhead
    return sorted((p for p in pattern if p.is_file()), key=lambda p: p.parts)


def _is_wav(path: Path) -> bool:
    return path.suffix.lower() == ".wav"


def _add(found: Discovery, seen: dict[str, Path], candidate: Candidate) -> None:
    """Keep the first file of each clip id: two files with one id would collide in every index."""
    if candidate.clip_id in seen:
        found.skip(candidate.path, f"duplicate clip id (also {seen[candidate.clip_id]})")
        return
    seen[candidate.clip_id] = candidate.path
    found.candidates.append(candidate)


def discover_official(root: Path) -> Discovery:
    audio_dir = official_audio_dir(root)
    if audio_dir is None:
        raise LayoutError(f"{root}: no {OFFICIAL_AUDIO_DIR}/ folder and no clip with an official "
                          "name (official layout)")
    found, seen = Discovery(), {}
    for path in _files(audio_dir, recursive=False):
        if path.name == DEMOGRAPHICS_FILE:  # a flat folder keeps it beside the clips
            continue
        if not _is_wav(path):
            found.skip(path, "not a .wav file")
            continue
        try:
            name = parse_clip_name(path.stem)
        except ClipNameError as exc:
            found.skip(path, str(exc))
            continue
        _add(found, seen, Candidate(path, path.stem, name.actor, name.sentence, name.emotion,
                                    name.level, None))
    return found


def _labelled(path: Path, split: str, entry: LabelEntry | None) -> Candidate:
    """Candidate from labels.csv (when listed) and the name; raise ValueError with the reason."""
    try:
        name = parse_clip_name(path.stem)
    except ClipNameError as exc:
        if entry is None:
            raise ValueError(f"no label ({LABELS_FILE} does not list it and {exc})") from None
        try:
            emotion = parse_emotion_label(entry.label)
        except ValueError as label_exc:
            raise ValueError(f"{LABELS_FILE}: {label_exc}") from None
        return Candidate(path, path.stem, entry.actor, "", emotion, "", split)
    emotion = name.emotion
    if entry is not None:
        try:
            emotion = parse_emotion_label(entry.label)
        except ValueError as label_exc:
            raise ValueError(f"{LABELS_FILE}: {label_exc}") from None
    actor = entry.actor if entry is not None and entry.actor is not None else name.actor
    return Candidate(path, path.stem, actor, name.sentence, emotion, name.level, split)


def discover_split_folders(root: Path) -> Discovery:
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        raise LayoutError(f"{root}: split_folders layout needs folders {', '.join(missing)}/")
    labels_path = root / LABELS_FILE
    labels = read_labels(labels_path) if labels_path.is_file() else {}
    found, seen = Discovery(), {}
    for split in SPLITS:
        for path in _files(root / split, recursive=True):
            if not _is_wav(path):
                found.skip(path, "not a .wav file")
                continue
            try:
                candidate = _labelled(path, split, labels.get(path.stem))
            except ValueError as exc:
                found.skip(path, str(exc))
                continue
            _add(found, seen, candidate)
    return found
