"""Actor-disjoint train/validation/test splits (CREMA-D has no official split).

Actors are put in a *stratified order*: within each sex the actors are shuffled (seeded) and spread
evenly over [0, 1); sorting by that position interleaves the sexes in proportion. Any contiguous
run of that order then holds both sexes in about the corpus's ratio, so cutting it into the
train/validation/test sizes (or into K folds) gives sex-balanced, deterministic splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from crema_exp.atomic import write_csv_atomic

SPLITS = ("train", "validation", "test")


class SplitError(ValueError):
    """Too few actors for the requested split."""


def stratified_actor_order(actor_sex: Mapping[int, str], seed: int, balance_sex: bool) -> list[int]:
    """Seeded order of actors in which each sex is spread evenly (see the module docstring)."""
    rng = np.random.default_rng(seed)
    strata: dict[str, list[int]] = {}
    for actor in sorted(actor_sex):
        strata.setdefault(actor_sex[actor] if balance_sex else "", []).append(actor)
    keyed = []
    for sex in sorted(strata):
        members = rng.permutation(strata[sex])
        for rank, actor in enumerate(members):
            keyed.append(((rank + rng.uniform(0.25, 0.75)) / len(members), int(actor)))
    return [actor for _, actor in sorted(keyed)]


def split_sizes(num_actors: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """Actor counts for (train, validation, test): rounded, at least one actor each."""
    if num_actors < 3:
        raise SplitError(f"{num_actors} actor(s): an actor-disjoint split needs at least 3")
    validation = max(1, round(num_actors * ratios[1]))
    test = max(1, round(num_actors * ratios[2]))
    train = num_actors - validation - test
    if train < 1:
        raise SplitError(f"{num_actors} actors leave none for training with ratios {ratios}")
    return train, validation, test


def assign_splits(actor_sex: Mapping[int, str], split_cfg,
                  fold: int | None = None) -> dict[int, str]:
    """Map each actor to a split: ratios from ``split_cfg``, or fold ``fold`` of K-fold actor CV.

    With a fold, actors are cut into ``split_cfg.num_folds`` folds; test = fold k, validation =
    fold (k + 1) % K, train = the rest, so over k = 0..K-1 every actor is tested exactly once.
    """
    order = stratified_actor_order(actor_sex, split_cfg.seed, split_cfg.balance_sex)
    if fold is None:
        sizes = split_sizes(len(order), (split_cfg.train, split_cfg.validation, split_cfg.test))
        labels = [split for split, size in zip(SPLITS, sizes) for _ in range(size)]
        return dict(zip(order, labels))
    num_folds = split_cfg.num_folds
    if not 0 <= fold < num_folds:
        raise SplitError(
            f"fold {fold} is outside 0..{num_folds - 1} (data.split.num_folds={num_folds})")
    if len(order) < num_folds:
        raise SplitError(f"{len(order)} actors cannot fill {num_folds} folds")
    folds = np.array_split(np.asarray(order), num_folds)
    roles = {fold: "test", (fold + 1) % num_folds: "validation"}
    return {int(actor): roles.get(k, "train")
            for k, members in enumerate(folds) for actor in members}


def save_splits(manifest: pd.DataFrame, path: str | Path) -> Path:
    """Write clip_id, actor, split (atomically) so a run records exactly which clips it used."""
    return write_csv_atomic(path, manifest[["clip_id", "actor", "split"]])
