"""CREMA-D clip names and emotion labels.

Official names are ``{actor}_{sentence}_{EMOTION}_{LEVEL}`` (``1001_DFA_ANG_XX``). Labels in a
user's ``labels.csv`` may be the three-letter code or a word (``ANG``, ``anger``, ``Angry``); both
map onto ``crema_exp.config.EMOTIONS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crema_exp.config import EMOTIONS

EMOTION_CODES = dict(zip(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"), EMOTIONS))
LEVELS = ("LO", "MD", "HI", "XX", "X")

# Case-insensitive spellings accepted in labels.csv: codes, class names and common adjectives.
_LABEL_WORDS = {
    **{code.lower(): emotion for code, emotion in EMOTION_CODES.items()},
    **{emotion: emotion for emotion in EMOTIONS},
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "happiness": "happy",
    "sadness": "sad",
}

_NAME = re.compile(
    r"(?P<actor>\d+)_(?P<sentence>[A-Za-z]+)_(?P<emotion>[A-Za-z]+)_(?P<level>[A-Za-z]+)")


class ClipNameError(ValueError):
    """A file name that is not a valid CREMA-D clip name; the message says what is wrong."""


@dataclass(frozen=True)
class ClipName:
    actor: int
    sentence: str
    emotion: str  # one of EMOTIONS
    level: str  # one of LEVELS


def parse_clip_name(clip_id: str) -> ClipName:
    """Parse ``1001_DFA_ANG_XX`` (no extension); raise ClipNameError naming the bad part."""
    match = _NAME.fullmatch(clip_id)
    if match is None:
        raise ClipNameError(
            f"malformed name ({clip_id!r} is not {{actor}}_{{sentence}}_{{EMOTION}}_{{LEVEL}})"
        )
    code, level = match["emotion"], match["level"]
    if code not in EMOTION_CODES:
        raise ClipNameError(
            f"unknown emotion code ({code!r} in {clip_id!r}; expected one of "
            f"{', '.join(EMOTION_CODES)})"
        )
    if level not in LEVELS:
        raise ClipNameError(
            f"unknown intensity level ({level!r} in {clip_id!r}; "
            f"expected one of {', '.join(LEVELS)})"
        )
    return ClipName(int(match["actor"]), match["sentence"], EMOTION_CODES[code], level)


def parse_emotion_label(label: str) -> str:
    """Map a labels.csv value (``ANG``, ``anger``, ``Angry``) to an EMOTIONS name (or ValueError)."""
    emotion = _LABEL_WORDS.get(str(label).strip().lower())
    if emotion is None:
        raise ValueError(f"unknown emotion label {label!r}")
    return emotion
