"""Training settings that suit each kind of feature, written into the store's metadata.json.

The train job fills every config value left ``null`` from these (an explicit user value always
wins), so a recipe only has to name the feature kind. Keys are dotted paths in the train config.
"""

from __future__ import annotations

from typing import Any

# Values of the reference recipes (conf/experiment): ssl: SpecAugment off, batch 12, EMA 0.995,
# R-Drop 0.3; mel_prosody: SpecAugment on, per-utterance CMVN on, EMA 0.995, R-Drop 0.5; mel:
# EMA 0.995, R-Drop 0.4. Values the recipes leave open are our choice and marked "chosen" below.
_RECOMMENDED: dict[str, dict[str, Any]] = {
    "ssl": {
        "trainer.batch_size": 12,
        "regularization.spec_augment.enabled": False,
        "regularization.ema_decay": 0.995,
        "regularization.rdrop_alpha": 0.3,
        # chosen: SSL hidden states are already level-invariant, and the store's global
        # train-split normalisation is enough; per-utterance CMVN would remove useful offsets.
        "regularization.per_utterance_cmvn": False,
    },
    "mel_prosody": {
        # chosen: spectral frames are small (245 dims at 100 fps), so larger batches fit easily.
        "trainer.batch_size": 32,
        "regularization.spec_augment.enabled": True,
        "regularization.per_utterance_cmvn": True,
        "regularization.ema_decay": 0.995,
        "regularization.rdrop_alpha": 0.5,
    },
    "mel": {
        "trainer.batch_size": 32,  # chosen: as mel_prosody
        # chosen: log-mel alone benefits from the same masking and channel normalisation as
        # mel_prosody (SpecAugment was designed for log-mel input).
        "regularization.spec_augment.enabled": True,
        "regularization.per_utterance_cmvn": True,
        "regularization.ema_decay": 0.995,
        "regularization.rdrop_alpha": 0.4,
    },
}


def recommended_settings(kind: str) -> dict[str, Any]:
    """Dotted train-config keys -> recommended values for a feature kind."""
    try:
        return dict(_RECOMMENDED[kind])
    except KeyError:
        raise ValueError(
            f"no recommendations for feature kind {kind!r}; known: {sorted(_RECOMMENDED)}"
        ) from None
