"""The one rule for what a stored frame array may hold, shared by the store builder and predict.

Features are kept as float16; a clip whose features have no frames, or that are not finite once
rounded to float16 (NaN, inf, or beyond float16's range), cannot be used.
"""

from __future__ import annotations

import numpy as np


def stored_frames(frames, stream: str) -> np.ndarray:
    """``frames`` as float16 [frames, dim], exactly as the store keeps them; ValueError if unusable."""
    stored = np.asarray(frames).astype(np.float16)
    if len(stored) == 0:
        raise ValueError("no frames (clip too short for the extractor)")
    if not np.isfinite(stored).all():
        raise ValueError(f"non-finite values (NaN/inf or beyond float16) in {stream!r}")
    return stored
