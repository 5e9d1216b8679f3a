"""Warnings about splits whose scores mean little: a missing class, too few clips, shared actors.

A run on such splits still trains and is still written, but its numbers are not comparable with a
sound run's: a validation split holding one emotion scores UAR 1.0 by always predicting it. The
warnings go into test_metrics.json ``warnings``, the end-of-run log and compare's leaderboard.
"""

from __future__ import annotations

import pandas as pd

from crema_exp.config import EMOTIONS

# Below this many clips one clip moves a six-class UAR by several points (about 1/(6*5) with
# five clips per class), so a validation or test score says little about the model.
MIN_EVALUATION_CLIPS = 30
EVALUATION_SPLITS = ("validation", "test")


def split_warnings(indexes: dict[str, pd.DataFrame]) -> list[str]:
    """Problems of the train/validation/test indexes (columns emotion and, optionally, actor)."""
    warnings = []
    for split, index in indexes.items():
        missing = [e for e in EMOTIONS if e not in set(index["emotion"])]
        if missing:
            warnings.append(f"the {split} split has no clip of {', '.join(missing)} "
                            f"({len(index)} clips): its scores do not cover every emotion")
        if split in EVALUATION_SPLITS and len(index) < MIN_EVALUATION_CLIPS:
            warnings.append(f"the {split} split has only {len(index)} clips (fewer than "
                            f"{MIN_EVALUATION_CLIPS}): its scores are noise-dominated")
    actors = {split: _actors(index) for split, index in indexes.items()}
    names = list(actors)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = sorted(actors[first] & actors[second])
            if shared:
                listed = ", ".join(shared[:5]) + (" ..." if len(shared) > 5 else "")
                warnings.append(f"{len(shared)} actor(s) appear in both {first} and {second} "
                                f"({listed}): the scores measure seen speakers")
    return warnings


def _actors(index: pd.DataFrame) -> set[str]:
    if "actor" not in index:
        return set()
    known = index["actor"].dropna().astype(str)
    return set(known[known != ""])
