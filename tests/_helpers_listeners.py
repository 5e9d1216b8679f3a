"""A generated voice-only ratings table (same columns as the packaged CREMA-D one) for any clips.

Each clip gets 6-12 votes: mostly its intended emotion, the rest spread over the others, so the
table has clear, tied and wrong majorities like the real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crema_exp.config import EMOTIONS


def write_generated_votes(path: Path, clip_ids: list[str], labels: list[int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for clip, label in zip(clip_ids, labels):
        share = np.full(len(EMOTIONS), 0.5 / (len(EMOTIONS) - 1))
        share[label] = 0.5
        rows.append(rng.multinomial(rng.integers(6, 13), share))
    table = pd.DataFrame(np.array(rows), columns=list(EMOTIONS))
    table.insert(0, "clip_id", clip_ids)
    table.to_csv(path, index=False)
    return path
