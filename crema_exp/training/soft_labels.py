"""Soft training targets: the intended emotion mixed with what the listeners heard.

target = (1 - w) * one_hot(intended) + w * (share of voice-only listeners choosing each emotion).
Trained on such targets a model learns the listeners' confusions as well as the intended label
(its probabilities become closer to the crowd's); evaluation stays on the intended labels. A clip
without ratings keeps its one-hot target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crema_exp.config import EMOTIONS, ConfigError
from crema_exp.data.listener_votes import vote_distribution


def soft_targets(clip_ids: list[str], labels: np.ndarray, votes: pd.DataFrame,
                 weight: float) -> tuple[np.ndarray, int]:
    """(float32 [clips, classes] targets whose rows sum to 1, number of clips with ratings)."""
    targets = np.eye(len(EMOTIONS), dtype=np.float64)[labels]
    rated = np.array([c in votes.index for c in clip_ids], dtype=bool)
    if rated.any():
        crowd = vote_distribution(votes.loc[[c for c, r in zip(clip_ids, rated) if r]])
        targets[rated] = (1.0 - weight) * targets[rated] + weight * crowd
    return targets.astype(np.float32), int(rated.sum())


def listener_targets(weight: float, votes: pd.DataFrame | None, source: str, split, log):
    """Targets for ``regularization.soft_labels=weight`` on the train split, None when it is 0."""
    if weight <= 0:
        return None
    if votes is None:
        raise ConfigError(f"regularization.soft_labels={weight:g} needs listener ratings: {source}")
    targets, rated = soft_targets(split.clip_ids, split.labels, votes, weight)
    if rated == 0:
        raise ConfigError(f"regularization.soft_labels={weight:g}: no training clip has ratings "
                          f"in {source}")
    log.info("soft labels: weight %g of the listeners' votes on %d of %d training clips (%s)",
             weight, rated, len(split), source)
    return targets
