"""Make Hydra find the resumable Optuna sweeper however crema_exp is installed.

Hydra finds plugins by listing the ``hydra_plugins`` namespace package; an editable install maps
``hydra_plugins.crema_exp_sweeper`` through an import hook that such a listing does not see, so
the entry points register the class explicitly (registering twice is harmless).
"""

from hydra.core.plugins import Plugins

from crema_exp.console import plain_optuna_logs_when_redirected


def register_sweeper_plugin() -> None:
    from hydra_plugins.crema_exp_sweeper.resumable_optuna_sweeper import ResumableOptunaSweeper

    Plugins.instance().register(ResumableOptunaSweeper)
    plain_optuna_logs_when_redirected()
