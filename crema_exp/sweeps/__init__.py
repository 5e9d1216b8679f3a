"""Optuna sweeps that can be stopped and resumed: one study in a database, one run folder per trial.

The Hydra plugin class lives in ``hydra_plugins.crema_exp_sweeper`` (Hydra only instantiates
sweepers from that namespace); the behaviour is implemented in :mod:`.resumable_sweeper`.
"""

import hydra_plugins.crema_exp_sweeper.config  # noqa: F401  (registers the sweeper schema)
from crema_exp.sweeps.plugin import register_sweeper_plugin
from crema_exp.sweeps.trial_record import TRIAL_RECORD, read_trial_record, trial_subdir

__all__ = ["TRIAL_RECORD", "read_trial_record", "register_sweeper_plugin", "trial_subdir"]
