"""Find run folders (a folder with .hydra/config.yaml) and read what each one recorded.

A run may be complete, failed or still running, so every artefact except .hydra/config.yaml is
optional; what is missing simply stays empty and shows up as such in the leaderboard.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from crema_exp import run_files
from crema_exp.comparison.effective import effective_overrides
from crema_exp.comparison.run_status import effective_status
from crema_exp.sweeps import TRIAL_RECORD


class ComparisonError(ValueError):
    """Nothing comparable was found; the message names the folder and the problem."""


@dataclass
class Run:
    path: Path
    name: str  # path relative to the common parent of the compared folders
    status: str  # status.json's: running | completed | pruned | failed | interrupted; "stale"
    # for a running run whose heartbeat stopped (run_status.py); "unknown" without one
    error: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value that acted (effective.py)
    history: list[dict[str, Any]] = field(default_factory=list)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    optuna: dict[str, Any] = field(default_factory=dict)  # study, trial, storage
    human: dict[str, Any] = field(default_factory=dict)  # human_comparison.json, if rated
    duration_s: float | None = None
    problems: list[str] = field(default_factory=list)  # unreadable artefacts, named


def discover_runs(patterns: list[str]) -> list[Path]:
    """Run folders under each folder or glob pattern; a pattern that yields no run is an error."""
    runs: set[Path] = set()
    for pattern in patterns:
        folders = [Path(p) for p in sorted(glob.glob(pattern))] or [Path(pattern)]
        found = set()
        for folder in folders:
            found |= _runs_under(folder, pattern)
        if not found:
            raise ComparisonError(
                f"{pattern}: not a Hydra multirun folder (no run folder with .hydra/config.yaml "
                "under it)")
        runs |= found
    return sorted(runs)


def _runs_under(folder: Path, pattern: str) -> set[Path]:
    if not folder.exists():
        raise ComparisonError(f"{folder}: no such file or directory (from argument {pattern!r})")
    if not folder.is_dir():
        raise ComparisonError(f"{folder}: not a folder (expected a Hydra multirun folder)")
    if not any(folder.iterdir()):
        raise ComparisonError(f"{folder}: empty folder (expected a Hydra multirun folder)")
    configs = folder.glob("**/.hydra/config.yaml")
    return {c.parent.parent.resolve() for c in configs}


def load_runs(run_dirs: list[Path]) -> list[Run]:
    parent = _common_parent(run_dirs)
    return [load_run(d, name=str(d.relative_to(parent))) for d in run_dirs]


def _common_parent(run_dirs: list[Path]) -> Path:
    return Path(os.path.commonpath([d.parent for d in run_dirs]))


def load_run(run_dir: Path, name: str) -> Run:
    problems: list[str] = []
    status = _read_json(run_dir / run_files.STATUS, problems) or {}
    return Run(
        path=run_dir,
        name=name,
        status=effective_status(status),
        error=status.get("error"),
        overrides=effective_overrides(
            _read_overrides(run_dir / run_files.HYDRA_OVERRIDES, problems), run_dir),
        history=_read_json(run_dir / run_files.HISTORY, problems) or [],
        test_metrics=_read_json(run_dir / run_files.TEST_METRICS, problems) or {},
        optuna=_read_json(run_dir / TRIAL_RECORD, problems) or {},
        human=_read_json(run_dir / run_files.HUMAN_COMPARISON, problems) or {},
        duration_s=status.get("duration_s"),
        problems=problems,
    )


def _read_json(path: Path, problems: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: unreadable ({exc})")
        return None


def _read_overrides(path: Path, problems: list[str]) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        lines = OmegaConf.to_container(OmegaConf.load(path))
        parsed = OverridesParser.create().parse_overrides(list(lines))
    except Exception as exc:  # a damaged file must not hide the other runs
        problems.append(f"{path.name}: unreadable ({exc})")
        return {}
    return {o.key_or_group: o.get_value_element_as_str() for o in parsed if not o.is_delete()}


# Sweeper search-space functions that sample from a range; choice(...), comma lists and values set
# in a custom search space are categories.
CONTINUOUS_SWEEPS = ("interval(", "range(")


def continuous_params(runs: list[Run]) -> set[str]:
    """Parameters some run's sweeper samples from a numeric range (hydra.sweeper.params)."""
    found: set[str] = set()
    for hydra_yaml in {run.path / ".hydra" / "hydra.yaml" for run in runs}:
        try:
            params = OmegaConf.select(OmegaConf.load(hydra_yaml), "hydra.sweeper.params")
        except Exception:  # a damaged or missing file: those runs' params count as categories
            continue
        if params:
            found |= {key for key, value in params.items()
                      if any(f in str(value) for f in CONTINUOUS_SWEEPS)}
    return found
