"""Sum up bench_sweep_pruning.py results of several sampler seeds: per seed and on average.

    .venv/bin/python benchmarks/pruning_over_seeds.py \
        benchmarks/recorded/pruning/startup2_seed*.json

One seed decides little at the demo's size: the validation split has 56 clips, so one clip moves
UAR by 0.017, and which trials the sampler proposes changes with the seed. The targets (time ratio
<= 0.6, best validation UAR within 0.02 of the unpruned sweep's) are judged per seed and on the
mean over seeds; the test UAR of each sweep's pick says whether a gap is seen on held-out actors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench_sweep_pruning import MAX_BEST_GAP, MAX_TIME_RATIO


def seed_row(result: dict) -> dict:
    none, median = result["none"], result["median"]
    return {"seed": result["settings"]["seed"],
            "ratio": median["wall_s"] / none["wall_s"],
            "gap": none["best_val_uar"] - median["best_val_uar"],
            "epochs": f"{median['epochs_trained']}/{none['epochs_trained']}",
            "test_none": none["test_uar_of_best"], "test_median": median["test_uar_of_best"]}


def setting_but_seed(result: dict) -> dict:
    """What the summed-up results must share: all the sweeps ran with but the seed."""
    return {**{k: v for k, v in result["settings"].items() if k != "seed"},
            "pruner_overrides": result["pruner_overrides"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="bench_sweep_pruning.py results")
    args = parser.parse_args()
    results = [json.loads(path.read_text()) for path in args.results]
    setting = setting_but_seed(results[0])
    for path, result in zip(args.results, results):
        if "median" not in result:
            sys.exit(f"{path}: holds the unpruned sweep only (--only-baseline)")
        if setting_but_seed(result) != setting:
            sys.exit(f"{path}: other settings than {args.results[0]}")
    rows = sorted((seed_row(r) for r in results), key=lambda row: row["seed"])
    print(f"settings {setting}")
    print("seed  time ratio  best val_uar gap  epochs median/none  test UAR of pick none/median")
    for row in rows:
        print(f"{row['seed']:>4}  {row['ratio']:10.3f}  {row['gap']:16.4f}  {row['epochs']:>19}  "
              f"{row['test_none']:.3f}/{row['test_median']:.3f}")
    mean = {key: statistics.mean(row[key] for row in rows)
            for key in ("ratio", "gap", "test_none", "test_median")}
    print(f"mean  {mean['ratio']:10.3f}  {mean['gap']:16.4f}  {'':>19}  "
          f"{mean['test_none']:.3f}/{mean['test_median']:.3f}")
    met = sum(row["ratio"] <= MAX_TIME_RATIO and row["gap"] <= MAX_BEST_GAP for row in rows)
    print(f"both targets met on {met} of {len(rows)} seeds; on the mean: time ratio "
          f"{'met' if mean['ratio'] <= MAX_TIME_RATIO else 'missed'}, gap "
          f"{'met' if mean['gap'] <= MAX_BEST_GAP else 'missed'}")


if __name__ == "__main__":
    main()
