"""Median pruning in a real sweep: wall time and best validation UAR with and without it.

    .venv/bin/python benchmarks/bench_sweep_pruning.py [--trials 16] [--epochs 10] [--actors 16]
        [--sentences DFA,IEO,TIE] [--seed 0] [--out benchmarks/results/sweep_pruning.json]
        [--baseline earlier.json | --only-baseline] [--pruner-overrides KEY=VALUE ...]

Runs the `mel_prosody_optuna` search on the demo corpus (`experiment=demo`, generated) twice with
the same sampler seed and the same number of trials: `hydra/sweeper/pruner=none`, then the shipped
default `median`. The feature store is built once before both (not timed). Prints, and writes as
JSON: wall time of each sweep and their ratio (target <= 0.6), best validation UAR of each
(target: the pruned sweep's best within 0.02 of the unpruned one) and the test UAR of the trial
each sweep picks, trial states, the number of epochs trained and each trial's learning curve (the
values the pruner saw) and test UAR. Smaller settings
(--trials 4 --epochs 3 --actors 6 --sentences DFA) make a smoke run.

The unpruned sweep is the expensive half: --only-baseline runs just it, --baseline takes it from an
earlier result of the same settings, so pruner settings (--pruner-overrides, e.g.
hydra.sweeper.pruner.n_warmup_steps=2) can be compared against one baseline;
benchmarks/replay_pruning.py replays pruner settings over its learning curves without training.
One seed decides little on 56 validation clips: run several (--seed 0, 1, ...) and sum them up
with benchmarks/pruning_over_seeds.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
# The targets: pruned wall time over unpruned, and how far the pruned sweep's best
# validation UAR may fall below the unpruned one's.
MAX_TIME_RATIO, MAX_BEST_GAP = 0.6, 0.02


def corpus_overrides(args: argparse.Namespace) -> list[str]:
    return ["experiment=demo", f"data.synthetic.num_actors={args.actors}",
            f"data.synthetic.sentences=[{args.sentences}]", f"trainer.epochs={args.epochs}"]


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "crema_exp.train", *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def sweep(pruner: str, args: argparse.Namespace, work: Path, env: dict,
          extra: list[str] = ()) -> dict:
    name = f"bench_{pruner}"
    sweep_dir = work / name
    wall = run(["-m", "hparams_search=mel_prosody_optuna", *corpus_overrides(args),
                f"hydra/sweeper/pruner={pruner}", *extra, f"hydra.sweeper.n_trials={args.trials}",
                f"hydra.sweeper.sampler.seed={args.seed}", f"hydra.sweeper.study_name={name}",
                f"hydra.sweep.dir={sweep_dir}"], work, env)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    test_uar = trial_test_uars(sweep_dir)
    return {
        "wall_s": round(wall, 1),
        "best_val_uar": study.best_value,
        "best_trial": study.best_trial.number,
        # What the sweep's pick scores on the held-out test actors: the best validation value is
        # the maximum over noisy trials (56 validation clips), so it overstates what was found.
        "test_uar_of_best": test_uar.get(study.best_trial.number),
        "states": {s.name.lower(): sum(t.state == s for t in trials)
                   for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)},
        "epochs_trained": sum(len(t.intermediate_values) for t in trials),
        # Each trial's reported values (best val_uar so far, per epoch): what the pruner saw.
        "curves": {t.number: {"state": t.state.name.lower(), "params": t.params,
                              "values": list(t.intermediate_values.values()),
                              "test_uar": test_uar.get(t.number)} for t in trials},
    }


def trial_test_uars(sweep_dir: Path) -> dict[int, float]:
    """Test UAR of each trial's best epoch, from its run folder (pruned trials write one too)."""
    found = {}
    for record in sweep_dir.glob("trial_*/optuna.json"):
        metrics = record.with_name("test_metrics.json")
        if metrics.exists():
            found[json.loads(record.read_text())["trial"]] = json.loads(metrics.read_text())["uar"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--actors", type=int, default=16)
    parser.add_argument("--sentences", default="DFA,IEO,TIE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "sweep_pruning.json")
    parser.add_argument("--baseline", type=Path, help="take the unpruned sweep from this result")
    parser.add_argument("--only-baseline", action="store_true", help="run the unpruned sweep only")
    parser.add_argument("--pruner-overrides", nargs="*", default=[],
                        help="Hydra overrides for the pruned sweep, e.g. "
                             "hydra.sweeper.pruner.n_warmup_steps=2")
    args = parser.parse_args()
    settings = {k: getattr(args, k) for k in ("trials", "epochs", "actors", "sentences", "seed")}
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    if baseline and baseline["settings"] != settings:
        sys.exit(f"{args.baseline} was run with {baseline['settings']}, not {settings}")

    results = {"settings": settings, "pruner_overrides": args.pruner_overrides}
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "CREMA_EXP_CACHE": str(work / "cache")}
        run([*corpus_overrides(args), "trainer.epochs=1", f"hydra.run.dir={work / 'warmup'}"],
            work, env)  # builds the feature store once, outside the timings
        results["none"] = baseline["none"] if baseline else sweep("none", args, work, env)
        if not args.only_baseline:
            results["median"] = sweep("median", args, work, env, args.pruner_overrides)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.only_baseline:
        args.out.write_text(json.dumps(results, indent=2))
        r = results["none"]
        print(f"none: {r['wall_s']:.1f} s  best val_uar {r['best_val_uar']:.4f}  {r['states']}  "
              f"epochs trained {r['epochs_trained']}; written to {args.out}")
        return
    ratio = results["median"]["wall_s"] / results["none"]["wall_s"]
    gap = results["none"]["best_val_uar"] - results["median"]["best_val_uar"]
    results["time_ratio"] = round(ratio, 3)
    results["best_val_uar_gap"] = round(gap, 4)
    results["targets_met"] = {f"time_ratio<={MAX_TIME_RATIO}": ratio <= MAX_TIME_RATIO,
                              f"best_gap<={MAX_BEST_GAP}": gap <= MAX_BEST_GAP}
    args.out.write_text(json.dumps(results, indent=2))
    for pruner in ("none", "median"):
        r = results[pruner]
        print(f"{pruner:>6}: {r['wall_s']:7.1f} s  best val_uar {r['best_val_uar']:.4f} "
              f"(trial {r['best_trial']}, test uar {r.get('test_uar_of_best')})  {r['states']}  "
              f"epochs trained {r['epochs_trained']}")
    print(f"time ratio median/none {ratio:.3f} (target <= {MAX_TIME_RATIO}); best val_uar gap "
          f"{gap:+.4f} (target <= {MAX_BEST_GAP}); written to {args.out}")


if __name__ == "__main__":
    main()
