"""Config schema of hydra/sweeper=crema_optuna: the upstream plugin's keys plus pruning and healing."""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class CremaOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.crema_exp_sweeper.resumable_optuna_sweeper.ResumableOptunaSweeper"
    # An Optuna pruner as a _target_ node (groups: hydra/sweeper/pruner=none|median|...); the
    # train job reports the objective after each epoch and stops when the pruner says so.
    pruner: Optional[Any] = None
    # Failed trials whose worker died or was interrupted run again (same parameters) this often.
    max_retry: int = 1
    # Optuna's trial heartbeat (RDB storages): a running trial whose worker has not sent one for
    # grace_period seconds is marked failed (and retried) by the next worker that looks.
    heartbeat_interval: int = 60
    grace_period: int = 180
    # TPE only: running trials count as bad results, so parallel workers spread out.
    constant_liar: bool = True


def register_sweeper_schema() -> None:
    ConfigStore.instance().store(group="hydra/sweeper", name="crema_optuna_schema",
                                 node=CremaOptunaSweeperConf, provider="crema_exp")


register_sweeper_schema()
