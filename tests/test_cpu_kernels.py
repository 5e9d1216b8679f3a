"""Building the compiled CPU kernels: a failed build falls back to the Python code with one
warning, and a build killed midway does not block the next one.

Each build runs in a process of its own, as in life: torch.utils.cpp_extension remembers every
extension a process built, and a second build of the same name in one process would be renamed.
"""

import os
import shutil
import subprocess
import sys

import pytest

from crema_exp.models import cpu_kernels

LOAD = """
import logging, torch
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from crema_exp.models.cpu_kernels import compiled_kernels
kernels = compiled_kernels()
print("kernels:", "python" if kernels is None else "compiled")
if kernels is not None:  # and they work
    out = kernels.forward_loop(torch.zeros(1, 1, 2, 3), torch.tensor([1]), torch.zeros(2, 1, 3),
                               torch.zeros(2, 1))[0]
    assert torch.equal(out, torch.zeros(1, 1, 2, 1))
    out, keep = kernels.dropout_forward(torch.ones(4), 32768)
    assert torch.equal(out, 2 * keep.float())
"""


def load_in_new_process(extensions: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                          timeout=180, check=True,
                          env={**os.environ, "TORCH_EXTENSIONS_DIR": extensions, **env})


def test_a_failed_build_means_the_python_code_after_one_warning(tmp_path):
    run = load_in_new_process(str(tmp_path), CXX="false")  # a compiler that always fails
    assert "kernels: python" in run.stdout
    warnings = [line for line in run.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "Python code" in warnings[0], run.stderr


def test_choosing_the_python_code_skips_the_build(tmp_path):
    run = load_in_new_process(str(tmp_path / "extensions"),
                              **{cpu_kernels.CHOICE_VARIABLE: "python"})
    assert "kernels: python" in run.stdout and not (tmp_path / "extensions").exists()


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler")
def test_a_lock_left_by_a_killed_build_does_not_block_the_next(tmp_path, monkeypatch):
    """torch's build lock is a file that only its holder removes, so a build SIGKILLed midway
    leaves it behind; torch alone would then wait for it forever."""
    first = load_in_new_process(str(tmp_path))
    assert "kernels: compiled" in first.stdout and "building the compiled" in first.stderr
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    folder = cpu_kernels.build_directory()
    (folder / "lock").touch()  # what a SIGKILLed build leaves
    second = load_in_new_process(str(tmp_path))
    assert "kernels: compiled" in second.stdout and "building" not in second.stderr
    assert not (folder / "lock").exists()
