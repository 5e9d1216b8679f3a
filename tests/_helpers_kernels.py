"""Running a test with the compiled CPU kernels and with their Python fallback."""

from __future__ import annotations

import shutil
from types import ModuleType

import pytest

from crema_exp.models.cpu_kernels import compiled_kernels


def use_implementation(kind: str, user: ModuleType, monkeypatch: pytest.MonkeyPatch) -> str:
    """``kind`` "python": ``user`` (a module that calls compiled_kernels) sees none and runs its
    Python code. "compiled": the kernels must be built here; skipped without a C++ compiler, failed
    when one is present but the build did not work (so CI cannot test only the fallback)."""
    if kind == "python":
        monkeypatch.setattr(user, "compiled_kernels", lambda: None)
    elif compiled_kernels() is None:
        if shutil.which("c++") is None:
            pytest.skip("no C++ compiler: the compiled kernels cannot be built here")
        pytest.fail("a C++ compiler is here but the compiled kernels did not build (see log)")
    return kind
