"""optuna.json: which study and trial a run folder belongs to, written before the trial starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crema_exp.atomic import write_json_atomic

TRIAL_RECORD = "optuna.json"


def trial_subdir(number: int) -> str:
    """Run folder name of an Optuna trial; unique within a study, so a resumed sweep never reuses one."""
    return f"trial_{number:04d}"


def write_trial_record(run_dir: Path, *, study: str, trial: int, storage: str | None,
                       **extra: Any) -> None:
    """``extra``: pruner, heartbeat, worker, sampler_seed, retry_of (see docs/sweeps.md)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / TRIAL_RECORD,
                      {"study": study, "trial": trial, "storage": storage, **extra})


def read_trial_record(run_dir: Path) -> dict[str, Any] | None:
    """The run's optuna.json, or None for a run that was not launched by an Optuna sweep."""
    path = run_dir / TRIAL_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
