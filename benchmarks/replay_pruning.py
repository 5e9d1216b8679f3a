"""Replay pruner settings over the learning curves of an unpruned sweep, without training.

    .venv/bin/python benchmarks/replay_pruning.py benchmarks/recorded/sweep_pruning_baseline.json
        [--startup 2 4] [--warmup 1 2 3]
    .venv/bin/python benchmarks/replay_pruning.py --storage sqlite:///multirun/NAME/optuna.db \
        --study NAME

Takes the learning curves of an unpruned sweep (each trial's best val_uar so far, per epoch, in
trial order): the unpruned half of a bench_sweep_pruning.py result, or the finished trials of any
study of ours run with hydra/sweeper/pruner=none. First it prints, per epoch k, the rank
correlation (Spearman) between the trials' values at epoch k and their final values: how well
epoch k ranks the settings. Then it feeds the curves, trial by trial and epoch by epoch, to
Optuna's MedianPruner with each setting, as the train job reports them, and prints the epochs
that would be trained (relative to the unpruned sweep: an estimate of the time ratio that leaves
out per-trial overhead), the trials pruned and the best value of the trials kept. An estimate only: in a real pruned sweep TPE
learns from the pruned trials and proposes other settings after the first one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna
from optuna.trial import TrialState
from scipy.stats import spearmanr


def replay(curves: list[list[float]], startup: int, warmup: int) -> dict:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=warmup))
    epochs = pruned = 0
    for curve in curves:
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            epochs += 1
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                pruned += 1
                break
        else:
            study.tell(trial, curve[-1])
    return {"epochs": epochs, "pruned": pruned, "best": study.best_value}


def rank_correlations(curves: list[list[float]]) -> list[float]:
    """Spearman correlation of the values at epoch k (or the last, if a trial ended before k)
    with the final values, for k = 1 .. the longest curve."""
    final = [c[-1] for c in curves]
    return [float(spearmanr([c[min(k, len(c)) - 1] for c in curves], final).statistic)
            for k in range(1, max(map(len, curves)) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", type=Path, nargs="?", help="a bench_sweep_pruning.py result")
    parser.add_argument("--storage", help="or a study's storage URL (with --study)")
    parser.add_argument("--study")
    parser.add_argument("--startup", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--warmup", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    if (args.result is None) == (args.storage is None) or bool(args.storage) != bool(args.study):
        parser.error("give a result file, or --storage and --study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage:
        try:
            study = optuna.load_study(study_name=args.study, storage=args.storage)
        except KeyError:
            parser.error(f"no study {args.study!r} in {args.storage}")
        curves = [list(t.intermediate_values.values()) for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))]
    else:
        trials = json.loads(args.result.read_text())["none"]["curves"]
        curves = [trials[n]["values"] for n in sorted(trials, key=int)]
    curves = [c for c in curves if c]
    total = sum(map(len, curves))
    print(f"unpruned: {len(curves)} trials, {total} epochs, best {max(c[-1] for c in curves):.4f}")
    print("rank correlation with the final value, epoch 1..: "
          + " ".join(f"{r:+.2f}" for r in rank_correlations(curves)))
    for startup in args.startup:
        for warmup in args.warmup:
            r = replay(curves, startup, warmup)
            print(f"n_startup_trials={startup} n_warmup_steps={warmup}: {r['epochs']} epochs "
                  f"({r['epochs'] / total:.2f}), {r['pruned']} pruned, best kept {r['best']:.4f}")


if __name__ == "__main__":
    main()
