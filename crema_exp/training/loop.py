"""The training loop: epochs over bucketed in-memory batches, EMA validation, early stopping.

Model selection uses the validation split only; the test split is evaluated once, with the weights
picked on validation. A non-finite loss stops the run with a RuntimeError naming the epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from crema_exp.config import EMOTIONS
from crema_exp.device import resolve_device
from crema_exp.models import EmotionClassifier
from crema_exp.training.augment import SpecAugment
from crema_exp.training.batching import Batch, BatchMaker
from crema_exp.training.data import SplitData, TrainingData
from crema_exp.training.ema import WeightAverager
from crema_exp.training.input_transform import InputTransform
from crema_exp.training.metrics import lower_is_better, summary_metrics
from crema_exp.training.optim import build_optimizer, build_scheduler
from crema_exp.training.progress import EpochProgress
from crema_exp.training.rdrop import classification_loss

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 64


@dataclass
class Evaluation:
    loss: float
    metrics: dict[str, float]  # wa, uar, macro_f1
    labels: np.ndarray  # true class per clip, in split order
    predictions: np.ndarray
    probabilities: np.ndarray  # [clips, classes]


@dataclass
class TrainingResult:
    model: nn.Module  # with the best (EMA) weights loaded, in eval mode
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_validation: Evaluation | None = None
    test: Evaluation | None = None
    objective: float = math.nan
    transform: InputTransform | None = None  # how inputs were prepared (saved in the checkpoint)


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse class frequency, N / (C * n_c); a class absent from training gets weight 0."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = np.divide(len(labels), len(EMOTIONS) * counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(weights, dtype=torch.float32)


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if lower_is_better(metric) else value > best


class Trainer:
    """Trains one model on TrainingData with the (already resolved) train config."""

    def __init__(self, cfg: DictConfig, data: TrainingData, train_targets: np.ndarray | None = None):
        self.cfg = cfg
        self.data = data
        # soft targets [train clips, classes] replacing the intended labels in the training loss
        self.train_targets = None if train_targets is None else torch.from_numpy(train_targets)
        self.device = resolve_device(cfg.trainer.device, "trainer.device")
        self.amp = bool(cfg.trainer.amp) and self.device.type == "cuda"
        reg = cfg.regularization
        self.transform = InputTransform(data.stream, data.mean, data.var,
                                        bool(reg.per_utterance_cmvn), data.layout)
        self.spec_augment = (
            SpecAugment(reg.spec_augment, data.layout) if reg.spec_augment.enabled else None
        )
        self.batches = BatchMaker(self.transform, self.device)

    def prepare(self, batch: Batch, train: bool) -> torch.Tensor:
        """The batch's prepared frames, with SpecAugment on training batches (if on)."""
        frames = batch.frames
        if train and self.spec_augment is not None:
            frames = self.spec_augment(frames, batch.lengths)
        return frames

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: SplitData) -> Evaluation:
        """Unweighted cross-entropy and metrics of ``model`` (eval mode) on a whole split."""
        model.eval()
        logits = torch.empty(len(split), len(EMOTIONS))
        for batch in self.batches.iterate(split, EVAL_BATCH_SIZE):
            with torch.autocast(self.device.type, enabled=self.amp):
                out = model(self.prepare(batch, train=False), batch.lengths)
            logits[torch.from_numpy(batch.indices)] = out.float().cpu()
        labels = torch.from_numpy(split.labels)
        loss = float(F.cross_entropy(logits, labels))
        predictions = logits.argmax(dim=1).numpy()
        return Evaluation(
            loss=loss,
            metrics=summary_metrics(split.labels, predictions),
            labels=split.labels,
            predictions=predictions,
            probabilities=torch.softmax(logits, dim=1).numpy(),
        )

    def fit(self, on_epoch_end: Callable[[dict], bool] | None = None) -> TrainingResult:
        """``on_epoch_end(row)`` sees each epoch's history row; True stops training (sweep pruning)."""
        cfg, reg, trainer_cfg = self.cfg, self.cfg.regularization, self.cfg.trainer
        torch.manual_seed(trainer_cfg.seed)
        rng = np.random.default_rng(trainer_cfg.seed)
        train = self.data.train
        model = EmotionClassifier(train.dim, cfg.model,
                                  mixed_layers=self.transform.layers).to(self.device)
        averager = WeightAverager(model, reg.ema_decay)
        optimizer = build_optimizer(model, cfg.optimizer)
        steps_per_epoch = math.ceil(len(train) / trainer_cfg.batch_size)
        scheduler = build_scheduler(optimizer, cfg.scheduler, steps_per_epoch, trainer_cfg.epochs)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        weight = class_weights(train.labels).to(self.device) if reg.class_weights else None
        criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=reg.label_smoothing)

        metric = trainer_cfg.optimized_metric
        result = TrainingResult(model=averager.evaluated, transform=self.transform)
        best_value, best_state, stale = None, None, 0
        for epoch in range(1, trainer_cfg.epochs + 1):
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            model.train()
            total_loss, seen = 0.0, 0
            progress = EpochProgress(epoch, steps_per_epoch, len(train))
            for batch in self.batches.iterate(train, trainer_cfg.batch_size, rng):
                targets = batch.labels if self.train_targets is None else (
                    self.train_targets[torch.from_numpy(batch.indices)].to(self.device))
                with torch.autocast(self.device.type, enabled=self.amp):
                    parts = classification_loss(
                        model, self.prepare(batch, train=True), batch.lengths, targets,
                        criterion, reg.rdrop_alpha,
                    )
                loss = parts.loss.detach().item()
                if not math.isfinite(loss):
                    raise RuntimeError(
                        f"training diverged at epoch {epoch}: loss is {loss} after "
                        f"{seen} of {len(train)} clips (try a lower optimizer.lr or "
                        "check the features for NaN/inf)"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(parts.loss).backward()
                if reg.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), reg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                averager.update()
                total_loss += loss * len(batch.indices)
                seen += len(batch.indices)
                progress.update(len(batch.indices))
            progress.close()

            validation = self.evaluate(averager.evaluated, self.data.validation)
            if not math.isfinite(validation.loss):
                raise RuntimeError(f"training diverged at epoch {epoch}: validation loss is {validation.loss}")
            row = {
                "epoch": epoch,
                "train_loss": total_loss / seen,
                "val_loss": validation.loss,
                **{f"val_{k}": v for k, v in validation.metrics.items()},
                "lr": lr,
                "time_s": time.perf_counter() - started,
            }
            if averager.evaluated.layer_mix is not None:
                row["layer_weights"] = averager.evaluated.layer_mix.weights().tolist()
            result.history.append(row)
            log.info(
                "epoch %d  train_loss %.4f  val_loss %.4f  val_wa %.4f  val_uar %.4f  (%.1fs)",
                epoch, row["train_loss"], row["val_loss"], row["val_wa"], row["val_uar"], row["time_s"],
            )
            if is_better(metric, row[metric], best_value):
                best_value, stale = row[metric], 0
                best_state = copy.deepcopy(averager.evaluated.state_dict())
                result.best_epoch, result.best_validation = epoch, validation
            else:
                stale += 1
                if stale >= trainer_cfg.patience:
                    log.info("early stop: no %s improvement for %d epochs", metric, stale)
                    break
            if on_epoch_end is not None and on_epoch_end(row):
                break

        result.model.load_state_dict(best_state)
        result.model.eval()
        result.test = self.evaluate(result.model, self.data.test)
        result.objective = float(best_value)
        return result
