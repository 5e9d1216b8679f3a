"""Checking a CREMA-D download against the official file list (names, sizes, sha256).

The reference list ships with the package (``crema_exp/data/reference/audio_manifest.csv``, ODbL).
``expect_complete=False`` verifies only the files that are present, for a partial copy.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pandas as pd

from crema_exp.data.layouts import OFFICIAL_AUDIO_DIR

_HASH_THREADS = min(8, 2 * (os.cpu_count() or 1))  # hashlib releases the GIL on large buffers


@dataclass(frozen=True)
class Mismatch:
    file: str
    expected: str | int
    found: str | int


@dataclass
class IntegrityReport:
    folder: Path
    checked: int = 0  # files compared with the reference
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    size_mismatch: list[Mismatch] = field(default_factory=list)
    sha256_mismatch: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.size_mismatch or self.sha256_mismatch)

    def summary(self, limit: int = 10) -> str:
        """Readable multi-line summary listing up to ``limit`` names per problem."""
        lines = [f"{self.folder}: {self.checked} files checked against the CREMA-D manifest"]
        problems = (("missing", self.missing), ("extra (not in the manifest)", self.extra),
                    ("size mismatch", self.size_mismatch),
                    ("sha256 mismatch", self.sha256_mismatch))
        for title, items in problems:
            if not items:
                continue
            lines.append(f"  {len(items)} {title}:")
            for item in items[:limit]:
                text = (f"{item.file} (expected {item.expected}, found {item.found})"
                        if isinstance(item, Mismatch) else item)
                lines.append(f"    {text}")
            if len(items) > limit:
                lines.append(f"    ... and {len(items) - limit} more")
        lines.append("  OK: every file matches" if self.ok else "  FAILED")
        return "\n".join(lines)


def reference_manifest() -> pd.DataFrame:
    """The official file list: columns file, bytes, sha256."""
    with files("crema_exp.data").joinpath("reference", "audio_manifest.csv").open("r") as stream:
        return pd.read_csv(stream, dtype={"file": str, "bytes": "int64", "sha256": str})


def audio_folder(root: str | Path) -> Path:
    """root/AudioWAV when present (the release's layout), else root itself."""
    root = Path(root)
    return root / OFFICIAL_AUDIO_DIR if (root / OFFICIAL_AUDIO_DIR).is_dir() else root


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_integrity(root: str | Path, quick: bool = False,
                    expect_complete: bool = True) -> IntegrityReport:
    """Compare the audio folder of ``root`` with the reference: missing, extra, size, sha256.

    ``quick`` compares sizes only (no hashing). ``expect_complete=False`` does not report
    reference files that are absent, so a subset of the corpus can be verified.
    """
    folder = audio_folder(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    reference = reference_manifest().set_index("file")
    # Only audio is compared: a README or .DS_Store next to the clips is no corruption.
    present = {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav"}
    report = IntegrityReport(folder=folder)
    report.extra = sorted(set(present) - set(reference.index))
    if expect_complete:
        report.missing = sorted(set(reference.index) - set(present))
    known = sorted(set(present) & set(reference.index))
    report.checked = len(known)
    same_size = []
    for name in known:
        size, expected = present[name].stat().st_size, int(reference.at[name, "bytes"])
        if size != expected:
            report.size_mismatch.append(Mismatch(name, expected, size))
        else:
            same_size.append(name)
    if not quick:
        with ThreadPoolExecutor(max_workers=_HASH_THREADS) as pool:
            digests = pool.map(lambda name: _sha256(present[name]), same_size)
            for name, digest in zip(same_size, digests):
                expected = reference.at[name, "sha256"]
                if digest != expected:
                    report.sha256_mismatch.append(Mismatch(name, expected, digest))
    return report
