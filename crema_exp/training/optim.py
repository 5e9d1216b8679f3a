"""AdamW and the per-batch learning-rate schedule (linear warm-up, then cosine or constant)."""

from __future__ import annotations

import math

import torch
from torch import nn

from crema_exp.config import OptimizerConfig, SchedulerConfig


def build_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW with torch's fused kernel: the same update as the default (for-each) AdamW, in one
    pass over the parameters instead of a dozen (2.9 -> 0.6 ms a step for the default model on
    2 CPU threads: 1-3 % of a step)."""
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas),
        fused=True,
    )


def lr_factor(step: int, total_steps: int, warmup_steps: int, cfg: SchedulerConfig) -> float:
    """Multiplier of the base lr after ``step`` optimiser steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.name == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per batch."""
    total = steps_per_epoch * epochs
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, cfg)
    )
