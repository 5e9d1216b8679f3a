"""python -m crema_exp.compare <multirun folder or glob> [more...] [--out DIR] [--metric val_uar]

Ranks every run found under the folders (completed, failed and still running) by a validation
metric and writes leaderboard.csv, leaderboard.md, plots and a self-contained report.html.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from crema_exp.comparison.compare_runs import compare
from crema_exp.comparison.leaderboard import KAPPA_LISTENERS, VALIDATION_METRICS
from crema_exp.comparison.report import formatted
from crema_exp.comparison.runs import ComparisonError

SHOWN_COLUMNS_DROPPED = ("error", "study")
CONSOLE_WIDTH = 120  # the console table fits this; every column is in leaderboard.csv / report.html
CELL_WIDTH = 24  # longer cells (run names, parameter values) are cut with "…"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crema_exp.compare", description=__doc__.split("\n\n")[1])
    parser.add_argument("folders", nargs="+", help="multirun folders or glob patterns (quote globs)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <common parent of the folders>/comparison)")
    parser.add_argument("--metric", default="val_uar", choices=VALIDATION_METRICS,
                        help="validation metric to rank by (default: val_uar)")
    parser.add_argument("--top-k", type=int, default=5, help="runs in the validation-curve plot")
    return parser.parse_args(argv)


def console_table(board: pd.DataFrame, width: int = CONSOLE_WIDTH) -> pd.DataFrame:
    """The leaderboard's leading columns, cells cut to CELL_WIDTH, as many as fit in ``width``.

    Order: rank, run, the ranking metric and its test score, status, warned, the swept parameters,
    then the other scores (``kappa_listeners`` shown as ``kappa``). Parameter columns are named by
    their last key part (``regularization.rdrop_alpha`` -> ``rdrop_alpha``); a run with result
    warnings shows ``yes`` under ``warned``.
    """
    shown = formatted(board.drop(columns=[c for c in SHOWN_COLUMNS_DROPPED if c in board]))
    shown["warnings"] = shown["warnings"].map(lambda text: "yes" if text else "")
    shown = shown.rename(columns={"warnings": "warned", KAPPA_LISTENERS: "kappa"})
    shown = shown.rename(columns={p: p.rsplit(".", 1)[-1] for p in board.attrs["params"]})
    shown = shown.map(lambda text: text if len(text) <= CELL_WIDTH else text[:CELL_WIDTH - 1] + "…")
    # a run's name differs at its end (trial_0007): keep the end
    shown["run"] = board["run"].map(lambda name: name if len(name) <= CELL_WIDTH
                                    else "…" + name[-(CELL_WIDTH - 1):])
    metric = board.attrs["metric"]
    test_score = "test_" + metric.removeprefix("val_")
    first = ["rank", "run", metric, test_score, "status", "warned",
             *(p.rsplit(".", 1)[-1] for p in board.attrs["params"])]
    order = [c for c in first if c in shown] + [c for c in shown if c not in first]
    kept, used = [], 0
    for column in shown[order].columns:
        column_width = max(len(str(column)), shown[column].str.len().max() or 0) + 2
        if used + column_width > width:
            break
        kept.append(column)
        used += column_width
    return shown[kept]


def print_leaderboard(board: pd.DataFrame) -> None:
    shown = console_table(board)
    hidden = len(board.columns) - len(SHOWN_COLUMNS_DROPPED) - len(shown.columns)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"ranked by {board.attrs['metric']} (validation)", box=None)
        for column in shown.columns:
            table.add_column(str(column), no_wrap=True)
        for row in shown.itertuples(index=False):
            table.add_row(*row)
        Console(width=CONSOLE_WIDTH).print(table)
    else:
        print(shown.to_string(index=False))
    if hidden > 0:
        print(f"({hidden} more column(s) in leaderboard.csv and report.html)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = compare(args.folders, args.out, args.metric, args.top_k)
    except ComparisonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_leaderboard(result.leaderboard)
    if result.headline:
        print(f"\nresult: {result.headline}")
    print(f"\nwrote {', '.join(sorted(result.files))} to {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
