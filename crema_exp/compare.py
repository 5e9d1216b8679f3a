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
from crema_exp.comparison.leaderboard import VALIDATION_METRICS
from crema_exp.comparison.report import formatted
from crema_exp.comparison.runs import ComparisonError

SHOWN_COLUMNS_DROPPED = ("error", "study")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crema_exp.compare", description=__doc__.split("\n\n")[1])
    parser.add_argument("folders", nargs="+", help="multirun folders or glob patterns (quote globs)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <common parent of the folders>/comparison)")
    parser.add_argument("--metric", default="val_uar", choices=VALIDATION_METRICS,
                        help="validation metric to rank by (default: val_uar)")
    parser.add_argument("--top-k", type=int, default=5, help="runs in the validation-curve plot")
    return parser.parse_args(argv)


def print_leaderboard(board: pd.DataFrame) -> None:
    shown = formatted(board.drop(columns=[c for c in SHOWN_COLUMNS_DROPPED if c in board]))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"ranked by {board.attrs['metric']} (validation)")
        for column in shown.columns:
            table.add_column(str(column), overflow="fold")
        for row in shown.itertuples(index=False):
            table.add_row(*row)
        Console().print(table)
    else:
        print(shown.to_string(index=False))


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
