"""Actor-disjoint, seeded, sex-balanced splits and K-fold actor cross-validation."""

from collections import Counter

import pandas as pd
import pytest
from omegaconf import OmegaConf

from crema_exp.config import SplitConfig
from crema_exp.data import save_splits
from crema_exp.data.splits import SplitError, assign_splits, split_sizes

# The real corpus shape: 91 actors, 48 male and 43 female.
ACTORS = {1000 + i: ("Male" if i <= 48 else "Female") for i in range(1, 92)}


def split_cfg(**values):
    cfg = OmegaConf.structured(SplitConfig)
    cfg.merge_with(values)
    return cfg


def test_ratio_split_covers_every_actor_once_with_the_requested_sizes():
    splits = assign_splits(ACTORS, split_cfg())
    assert set(splits) == set(ACTORS)
    assert Counter(splits.values()) == {"train": 63, "validation": 14, "test": 14}


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    assert assign_splits(ACTORS, split_cfg(seed=3)) == assign_splits(ACTORS, split_cfg(seed=3))
    assert assign_splits(ACTORS, split_cfg(seed=3)) != assign_splits(ACTORS, split_cfg(seed=4))


@pytest.mark.parametrize("seed", range(5))
def test_each_split_keeps_the_corpus_sex_ratio(seed):
    splits = assign_splits(ACTORS, split_cfg(seed=seed))
    for name, expected_male in (("train", 63 * 48 / 91), ("validation", 14 * 48 / 91),
                                ("test", 14 * 48 / 91)):
        males = sum(1 for a, s in splits.items() if s == name and ACTORS[a] == "Male")
        assert abs(males - expected_male) <= 1.5, (name, males)


def test_without_sex_balance_a_split_can_be_lopsided():
    # Sanity check that the balance test above can fail: unbalanced draws drift further.
    worst = 0.0
    for seed in range(30):
        splits = assign_splits(ACTORS, split_cfg(seed=seed, balance_sex=False))
        males = sum(1 for a, s in splits.items() if s == "test" and ACTORS[a] == "Male")
        worst = max(worst, abs(males - 14 * 48 / 91))
    assert worst > 1.5


def test_folds_test_every_actor_exactly_once_and_never_overlap():
    cfg = split_cfg(num_folds=5, seed=1)
    tested = Counter()
    for fold in range(5):
        splits = assign_splits(ACTORS, cfg, fold=fold)
        assert set(splits) == set(ACTORS)
        counts = Counter(splits.values())
        assert counts["test"] in (18, 19) and counts["validation"] in (18, 19)
        males = sum(1 for a, s in splits.items() if s == "test" and ACTORS[a] == "Male")
        assert abs(males - counts["test"] * 48 / 91) <= 1.5  # folds are sex-balanced too
        tested.update(a for a, s in splits.items() if s == "test")
        next_test = {a for a, s in assign_splits(ACTORS, cfg, fold=(fold + 1) % 5).items()
                     if s == "test"}
        assert next_test == {a for a, s in splits.items() if s == "validation"}
    assert tested == Counter(list(ACTORS))  # every actor in exactly one test fold


def test_too_few_actors_is_a_clear_error():
    with pytest.raises(SplitError, match="at least 3"):
        split_sizes(2, (0.7, 0.15, 0.15))
    with pytest.raises(SplitError, match="cannot fill 5 folds"):
        assign_splits({1: "", 2: "", 3: ""}, split_cfg(), fold=0)
    assert split_sizes(3, (0.7, 0.15, 0.15)) == (1, 1, 1)


def test_save_splits_writes_clip_actor_split(tmp_path):
    manifest = pd.DataFrame({"clip_id": ["b", "a"], "actor": [1002, 1001], "split": ["test", "train"],
                             "path": ["/b.wav", "/a.wav"]})
    path = save_splits(manifest, tmp_path / "run" / "splits.csv")
    saved = pd.read_csv(path)
    assert list(saved.columns) == ["clip_id", "actor", "split"]
    assert saved.to_dict("list") == {"clip_id": ["b", "a"], "actor": [1002, 1001],
                                     "split": ["test", "train"]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["splits.csv"]  # no temp file left
