"""Compare finished, failed and running runs of one or more Hydra multirun folders."""

from crema_exp.comparison.runs import ComparisonError, Run, discover_runs, load_runs

__all__ = ["ComparisonError", "Run", "discover_runs", "load_runs"]
