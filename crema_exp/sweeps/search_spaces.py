"""Conditional search spaces for the Optuna sweeper (its ``custom_search_space`` hook).

hydra-optuna-sweeper's ``params`` block samples every parameter in every trial. A parameter that an
earlier choice makes irrelevant (SpecAugment mask widths when SpecAugment is off) would then be
sampled anyway, and the comparison would show "effects" and importances of values that did nothing.
The functions here are called with (sweep config, trial) after the ``params`` block is sampled and
ask Optuna for the dependent parameters only when they take effect.
"""

from __future__ import annotations

from omegaconf import DictConfig
from optuna.trial import Trial

SPEC_AUGMENT = "regularization.spec_augment"


def spec_augment_masks(cfg: DictConfig, trial: Trial) -> None:
    """Mask widths only for trials that sampled ``regularization.spec_augment.enabled=true``."""
    if trial.params.get(f"{SPEC_AUGMENT}.enabled") is not True:
        return
    trial.suggest_categorical(f"{SPEC_AUGMENT}.freq_mask", [4, 8, 16])
    trial.suggest_categorical(f"{SPEC_AUGMENT}.time_mask", [10, 20, 40])
