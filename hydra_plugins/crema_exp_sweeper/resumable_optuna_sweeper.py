"""Hydra plugin entry for crema_exp's resumable Optuna sweeper (config: hydra/sweeper=crema_optuna).

Hydra instantiates sweepers only from the ``hydra_plugins`` namespace; the implementation is in
:mod:`crema_exp.sweeps.resumable_sweeper` and is imported lazily, like the upstream plugin does,
so that plugin discovery stays fast for every Hydra app.
"""

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class ResumableOptunaSweeper(OptunaSweeper):
    def __init__(self, **kwargs: Any) -> None:
        from crema_exp.sweeps.resumable_sweeper import ResumableOptunaSweeperImpl

        self.sweeper = ResumableOptunaSweeperImpl(**kwargs)
