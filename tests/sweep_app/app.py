"""A stand-in for the train job that runs in milliseconds, for testing sweep and compare mechanics.

It composes the real config groups (features, regularization, hparams_search, hydra/sweeper,
hydra/launcher) from the repository's conf/, computes a deterministic "validation UAR" from the
swept values and writes the run-folder artefacts documented for the train job (docs/interfaces.md).
``app.fail_trials`` / ``app.nan_trials`` (Optuna trial numbers, read from the run's optuna.json)
make a trial raise or return NaN; ``app.epochs`` simulated epochs of ``app.epoch_s`` seconds report
to the trial like the train job does (pruning, heartbeats, signals: crema_exp/training/job_lifecycle.py).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hydra.core.config_store import ConfigStore  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from crema_exp.atomic import write_json_atomic  # noqa: E402
from crema_exp.sweeps import read_trial_record, register_sweeper_plugin  # noqa: E402
from crema_exp.training.job_lifecycle import run_tracked  # noqa: E402

register_sweeper_plugin()

ConfigStore.instance().store(
    name="sweep_app",
    node={
        "defaults": ["_self_", {"features": "ssl"}, {"regularization": "default"},
                     {"hparams_search": None}],
        "app": {"fail_trials": [], "nan_trials": [], "epochs": 3, "epoch_s": 0.0},
        "data": {"fold": None},
        "trainer": {"seed": 0, "optimized_metric": "val_uar"},
        "hydra": {"sweep": {"dir": "multirun/app", "subdir": "${hydra.job.num}"},
                  "job": {"chdir": False}},
    },
)


def fake_val_uar(cfg: DictConfig) -> float:
    """A smooth function of the swept values, best at layer 12, rdrop 0.3, ema 0.995."""
    layer = cfg.features.ssl_layer % 13
    rdrop = cfg.regularization.rdrop_alpha or 0.0
    ema = cfg.regularization.ema_decay or 0.0
    ema_penalty = 0.05 if ema == 0 else 2 * abs(ema - 0.995)
    return round(0.3 + 0.02 * layer - 0.2 * abs(rdrop - 0.3) - ema_penalty + 0.01 * cfg.trainer.seed, 6)


def write_artefacts(run_dir: Path, cfg: DictConfig, val_uar: float) -> None:
    epochs = cfg.app.epochs
    history = [{"epoch": e, "train_loss": 1.8 - 0.1 * e, "val_loss": 1.7 - 0.05 * e,
                "val_wa": val_uar - 0.01 * (epochs - e), "val_uar": val_uar - 0.02 * (epochs - e),
                "val_macro_f1": val_uar - 0.03 * (epochs - e), "lr": 1e-3, "time_s": 0.1}
               for e in range(1, epochs + 1)]
    write_json_atomic(run_dir / "history.json", history)
    write_json_atomic(run_dir / "test_metrics.json", {
        "wa": val_uar - 0.04, "uar": val_uar - 0.05, "macro_f1": val_uar - 0.06, "num_clips": 36,
        "best_epoch": epochs, "val_wa": history[-1]["val_wa"], "val_uar": val_uar,
        "val_macro_f1": history[-1]["val_macro_f1"], "val_loss": history[-1]["val_loss"]})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow([[val_uar, 0.1], [0.2, 0.5]])
    fig.savefig(run_dir / "confusion_matrix.png")
    plt.close(fig)


def epochs(cfg: DictConfig, val_uar: float, on_epoch_end) -> bool:
    """Simulated epochs (``app.epoch_s`` seconds each) reporting a rising val_uar; True if pruned."""
    for epoch in range(1, cfg.app.epochs + 1):
        time.sleep(cfg.app.epoch_s)
        row = {"epoch": epoch, "val_uar": val_uar - 0.02 * (cfg.app.epochs - epoch)}
        if on_epoch_end is not None and on_epoch_end(row):
            return True
    return False


@hydra.main(version_base="1.3", config_path="../../conf", config_name="sweep_app")
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    trial = (read_trial_record(run_dir) or {}).get("trial")

    def work(on_epoch_end) -> float:
        if trial in cfg.app.fail_trials:
            raise RuntimeError("injected failure")
        if trial in cfg.app.nan_trials:
            return math.nan
        val_uar = fake_val_uar(cfg)
        epochs(cfg, val_uar, on_epoch_end)
        write_artefacts(run_dir, cfg, val_uar)
        return val_uar

    return run_tracked(run_dir, "val_uar", work)


if __name__ == "__main__":
    main()
