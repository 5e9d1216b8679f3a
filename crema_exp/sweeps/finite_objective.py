"""Launcher wrapper that turns a NaN or infinite objective into a failed job.

hydra-optuna-sweeper 1.3.0 would otherwise crash the whole sweep: Optuna refuses a NaN value and
the plugin's fallback ``tell(state=FAIL, values=[nan])`` is refused too.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus


class NonFiniteObjectiveError(ValueError):
    """The task function returned NaN or infinity (e.g. a diverged loss)."""


class FiniteObjectiveLauncher:
    """Delegates to the configured launcher; marks jobs with a non-finite return value as failed."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        returns = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        for ret in returns:
            if ret.status == JobStatus.COMPLETED and _is_non_finite(ret.return_value):
                ret.return_value = NonFiniteObjectiveError(
                    f"objective is {ret.return_value} for overrides {list(ret.overrides or [])}"
                )
                ret.status = JobStatus.FAILED
        return returns


def _is_non_finite(value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    try:
        return any(not math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False  # not a number at all: the plugin reports that itself
