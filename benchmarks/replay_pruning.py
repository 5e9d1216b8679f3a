"""Replay pruner settings over the learning curves of unpruned sweeps, without training.

    .venv/bin/python benchmarks/replay_pruning.py benchmarks/recorded/pruning/startup4_seed*.json \
        [--startup 2 4] [--warmup 1 2 3]
    .venv/bin/python benchmarks/replay_pruning.py --storage sqlite:///multirun/NAME/optuna.db \
        --study NAME

Takes the learning curves of one or more unpruned sweeps (each trial's best val_uar so far, per
epoch, in trial order): the unpruned half of bench_sweep_pruning.py results (one per sampler seed,
say), or the finished trials of any study of ours run with hydra/sweeper/pruner=none. First it
prints, per sweep and epoch k, the rank correlation (Spearman) between the trials' values at epoch
k and their final values: how well epoch k ranks the settings. Then it feeds each sweep's curves,
trial by trial and epoch by epoch, to Optuna's MedianPruner with each setting, as the train job
reports them, and prints per sweep the share of epochs that would be trained (an estimate of the
time ratio that leaves out per-trial overhead) and the best value of the trials kept, and with
several sweeps their means. An estimate only: in a real pruned sweep TPE learns from the pruned
trials and proposes other settings after the first one.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import optuna
from optuna.trial import TrialState
from scipy.stats import spearmanr


def replay(curves: list[list[float]], startup: int, warmup: int) -> dict:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=startup, n_warmup_steps=warmup))
    epochs = 0
    for curve in curves:
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            epochs += 1
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, curve[-1])
    return {"share": epochs / sum(map(len, curves)),
            "gap": max(c[-1] for c in curves) - study.best_value, "best": study.best_value}


def rank_correlations(curves: list[list[float]]) -> list[float]:
    """Spearman correlation of the values at epoch k (or the last, if a trial ended before k)
    with the final values, for k = 1 .. the longest curve."""
    final = [c[-1] for c in curves]
    return [float(spearmanr([c[min(k, len(c)) - 1] for c in curves], final).statistic)
            for k in range(1, max(map(len, curves)) + 1)]


def sweeps_to_replay(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Name -> learning curves of each unpruned sweep given on the command line."""
    if args.storage:
        try:
            study = optuna.load_study(study_name=args.study, storage=args.storage)
        except KeyError:
            parser.error(f"no study {args.study!r} in {args.storage}")
        return {args.study: [list(t.intermediate_values.values()) for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))]}
    sweeps = {}
    for path in args.results:
        result = json.loads(path.read_text())
        trials = result["none"]["curves"]
        sweeps[f"{path.stem} (seed {result['settings']['seed']})"] = [
            trials[n]["values"] for n in sorted(trials, key=int)]
    return sweeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="*", help="bench_sweep_pruning.py results")
    parser.add_argument("--storage", help="or a study's storage URL (with --study)")
    parser.add_argument("--study")
    parser.add_argument("--startup", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--warmup", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    if bool(args.results) == bool(args.storage) or bool(args.storage) != bool(args.study):
        parser.error("give result files, or --storage and --study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweeps = {name: [c for c in curves if c]
              for name, curves in sweeps_to_replay(args, parser).items()}
    for name, curves in sweeps.items():
        print(f"{name}: {len(curves)} trials, {sum(map(len, curves))} epochs, best "
              f"{max(c[-1] for c in curves):.4f}; rank correlation with the final value, "
              "epoch 1..: " + " ".join(f"{r:+.2f}" for r in rank_correlations(curves)))
    for startup in args.startup:
        for warmup in args.warmup:
            runs = [replay(curves, startup, warmup) for curves in sweeps.values()]
            line = "; ".join(f"{r['share']:.2f} of the epochs, best kept {r['best']:.4f} "
                             f"(gap {r['gap']:.3f})" for r in runs)
            if len(runs) > 1:
                line += (f"; mean {statistics.mean(r['share'] for r in runs):.3f} of the epochs, "
                         f"gap {statistics.mean(r['gap'] for r in runs):.4f}")
            print(f"n_startup_trials={startup} n_warmup_steps={warmup}: {line}")


if __name__ == "__main__":
    main()
