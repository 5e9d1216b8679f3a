"""Train job: python -m crema_exp.train [overrides]  (returns the validation objective to Hydra).

Finds or builds the feature store for data + features and the view of data's split (fold), resolves
the null settings from conf/features/<kind>.yaml's recommendations, trains one model and writes the
run directory's artefacts (docs/interfaces.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from crema_exp import run_files
from crema_exp.cli_errors import user_errors
from crema_exp.config import register_configs, validate
from crema_exp.data.listener_votes import votes_for_corpus
from crema_exp.data.splits import SPLITS
from crema_exp.features.views import prepare_features
from crema_exp.features.weights_check import require_ssl_weights
from crema_exp.atomic import atomic_write, write_json_atomic
from crema_exp.training.artefacts import write_run_artefacts
from crema_exp.training.checkpoint import save_checkpoint
from crema_exp.training.data import load_training_data
from crema_exp.training.job_lifecycle import run_tracked
from crema_exp.training.human_comparison import report_against_listeners
from crema_exp.training.layer_reader import load_mixed_training_data, mixed_streams
from crema_exp.training.loop import Trainer
from crema_exp.training.sanity import split_warnings
from crema_exp.sweeps import register_sweeper_plugin
from crema_exp.training.settings import (
    disable_spec_augment_without_layout,
    recommended_settings,
    resolve_settings,
)
from crema_exp.training.soft_labels import listener_targets
from crema_exp.training.threads import configure_threads

register_configs()
register_sweeper_plugin()  # so that `-m hparams_search=...` finds our Optuna sweeper
log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "the SSL features of this store come from RANDOMLY INITIALISED weights: "
    "the results say nothing about the pretrained model"
)


def train(cfg: DictConfig, run_dir: Path, on_epoch_end=None) -> float:
    """One training run in ``run_dir``; returns trainer.optimized_metric at the best epoch.

    ``on_epoch_end(row) -> stop`` is called after each epoch (an Optuna sweep's pruning)."""
    validate(cfg)
    configure_threads(cfg.trainer.num_threads)
    require_ssl_weights(cfg)  # before the corpus is generated or scanned
    view = prepare_features(cfg)
    store = view.store
    streams = mixed_streams(store, cfg.features)  # several layers for a learned mix, else None
    stream = streams[0] if streams else store.stream_name(cfg.features)
    log.info("feature store %s, stream %s, view %s", store.root, stream, view.root.name)

    resolved = resolve_settings(cfg, recommended_settings(cfg.features))
    layout = store.metadata["streams"][stream].get("layout")
    disable_spec_augment_without_layout(cfg, resolved, stream, layout)
    write_json_atomic(run_dir / run_files.RESOLVED_SETTINGS, resolved)
    with atomic_write(run_dir / run_files.RESOLVED_CONFIG, "w") as f:
        f.write(OmegaConf.to_yaml(cfg, resolve=True))

    warnings = []
    weights = store.metadata.get("weights") or {}
    if weights.get("random"):
        log.warning("!" * 20 + " %s " + "!" * 20, RANDOM_WEIGHTS_WARNING)
        warnings.append(RANDOM_WEIGHTS_WARNING)

    if streams:
        log.info("learned mix of %d layers: %s", len(streams), ", ".join(streams))
    data = load_mixed_training_data(view, streams) if streams else load_training_data(view, stream)
    log.info("clips: train %d, validation %d, test %d", len(data.train), len(data.validation),
             len(data.test))
    warnings += split_warnings({split: view.split(split) for split in SPLITS})
    votes, votes_source = votes_for_corpus(cfg.data, view.corpus_layout)
    targets = listener_targets(cfg.regularization.soft_labels, votes, votes_source, data.train, log)
    result = Trainer(cfg, data, train_targets=targets).fit(on_epoch_end)

    save_checkpoint(
        run_dir / run_files.BEST_MODEL, result.model, cfg=cfg, transform=result.transform,
        weights=weights, epoch=result.best_epoch,
        validation={"val_loss": result.best_validation.loss,
                    **{f"val_{k}": v for k, v in result.best_validation.metrics.items()}},
    )
    write_run_artefacts(run_dir, result, data.test.clip_ids,
                        {"feature_store": str(store.root), "stream": streams or stream,
                         "features": view.record(), "warnings": warnings})
    log.info("best epoch %d: %s = %.4f; test %s", result.best_epoch,
             cfg.trainer.optimized_metric, result.objective, result.test.metrics)
    for warning in warnings:
        log.warning("result warning: %s", warning)
    report_against_listeners(run_dir, data.test.clip_ids, result.test, votes, votes_source, log)
    log.info("run folder: %s", run_dir)
    return result.objective


def run_job(cfg: DictConfig, run_dir: Path) -> float:
    """``train`` with status.json kept up to date (crema_exp/training/job_lifecycle.py)."""
    storage = HydraConfig.get().sweeper.get("storage") if HydraConfig.initialized() else None
    return run_tracked(run_dir, cfg.trainer.optimized_metric,
                       lambda on_epoch_end: train(cfg, run_dir, on_epoch_end), storage_url=storage)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> float:
    return run_job(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
