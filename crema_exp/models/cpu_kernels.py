"""The compiled CPU kernels: built once per machine, or None where they can't be.

They are the BiGRU's time loops (gru_loop.cpp: a layer's training step 1.3-1.6x faster on CPU
than the same loops in Python, benchmarks/README.md) and dropout in one pass (dropout_mask.cpp:
the masks of dropout.py's Python code, bit for bit, in about 60 % of its time).
torch.utils.cpp_extension builds them with ninja and the system C++ compiler the first time they
are needed (about 15 s), for this CPU's vector width, into torch's extension folder
(TORCH_EXTENSIONS_DIR, by default ~/.cache/torch_extensions); later processes load the built
library at once. The folder name carries the vector width, the torch version and a hash of the
sources, so machines of a cluster that share a home folder, a torch upgrade and another checkout
of this project each get a build of their own.

Where the build fails (no compiler, for instance) training goes on with the Python code
(gru_layer.py, dropout.py), which computes the same, after one warning that says why.
CREMA_EXP_KERNELS=python chooses the Python code without trying.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from crema_exp.features.store_lock import build_lock

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name(name) for name in ("gru_loop.cpp", "dropout_mask.cpp")]
CHOICE_VARIABLE = "CREMA_EXP_KERNELS"

# Compiler flags per vector width torch detected on this CPU: those ATen builds its own kernels
# of that width with (CPU_CAPABILITY selects ATen's matching Vectorized<float>). Any other CPU
# gets portable code.
_VECTOR_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
               "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"],
    "AVX2": ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
}


@functools.cache
def compiled_kernels() -> Any | None:
    """The compiled operators (torch.ops.crema: ``forward_loop``, ``backward_loop``,
    ``dropout_forward``, ``dropout_backward``), or None: use the Python code."""
    if os.environ.get(CHOICE_VARIABLE, "compiled") == "python":
        return None
    try:
        return _build()
    except Exception as error:  # any failure to build or load means: the Python code
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning("the compiled CPU kernels (GRU loops, dropout) could not be built (%s); "
                    "training uses the Python code, which computes the same, more slowly", reason)
        return None


def _cpp_extension() -> ModuleType:
    """torch.utils.cpp_extension, imported without its "No CUDA runtime is found" warning, which
    says nothing about a CPU-only build."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import cpp_extension

    return cpp_extension


def build_directory() -> Path:
    """Where this CPU's build of these sources lives (one folder per vector width, Python and
    torch version, and sources: two checkouts of different versions never rebuild over each
    other)."""
    width = torch.backends.cpu.get_cpu_capability()
    width = width.lower() if width in _VECTOR_FLAGS else "portable"
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    torch_version = torch.__version__.replace("+", "_").replace(".", "_")
    source = hashlib.sha256(b"".join(path.read_bytes() for path in SOURCES)).hexdigest()[:10]
    root = (os.environ.get("TORCH_EXTENSIONS_DIR")  # as torch's own load() does
            or _cpp_extension().get_default_build_root())
    return Path(root) / f"crema_kernels_{width}_{python}_torch{torch_version}_{source}"


def _build() -> Any:
    import ninja  # the build tool cpp_extension runs; its wheel puts the binary in BIN_DIR

    folder = build_directory()
    folder.mkdir(parents=True, exist_ok=True)
    if ninja.BIN_DIR not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    # Our flock is released by the kernel when its holder dies; torch's own lock file (``lock``
    # in the folder) is not, and a build killed midway would leave every later one waiting on
    # it. Under our lock nobody else is building, so a ``lock`` found there is such a leftover.
    with build_lock(folder.with_name(folder.name + ".lock"), what="The compiled CPU kernels"):
        (folder / "lock").unlink(missing_ok=True)
        if not any(folder.glob("*.so")):
            log.info("building the compiled CPU kernels (GRU loops, dropout) for this CPU (once, "
                     "about 15 s) in %s", folder)
        flags = _VECTOR_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])
        _cpp_extension().load(
            name=folder.name, sources=[str(path) for path in SOURCES], build_directory=str(folder),
            extra_cflags=["-O3", "-fopenmp", *flags], extra_ldflags=["-fopenmp"],
            is_python_module=False, verbose=False)  # loads it: registers torch.ops.crema
    return torch.ops.crema
