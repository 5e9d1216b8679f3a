"""A feature store that never hangs and checks itself, tested the way it fails in life.

Real processes: precompute jobs SIGKILLed at several moments (pool workers running, during
consolidation, just before metadata.json), a lock kept alive by an orphan, damaged store files
(which the cheap checks on reuse catch, which only verify=true catches), and a full disk (a small
tmpfs, where this machine lets the test mount one).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from crema_exp.config import register_configs
from crema_exp.features import precompute
from crema_exp.features.precompute import ensure_store
from crema_exp.features.store import FeatureStore, StoreError
from crema_exp.features.store_check import check_store
from crema_exp.features.store_lock import build_lock
from crema_exp.features.views import ensure_view
from crema_exp.cli_errors import EXIT_USER_ERROR

from _helpers_store import FakeExtractor, make_cfg, store_files, write_corpus

TINY = ["data=synthetic", "data.synthetic.num_actors=6", "data.synthetic.sentences=[DFA]",
        "data.synthetic.max_duration=1.6", "features=mel_prosody", "features.num_workers=2"]
CHILD = Path(__file__).with_name("_store_child.py")
CONF = Path(__file__).resolve().parents[1] / "conf"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CREMA_EXP_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def start_child(tmp_path: Path, moment: str, *overrides: str) -> subprocess.Popen:
    """The precompute entry point that pauses at ``moment`` (see _store_child.py)."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    command = [sys.executable, str(CHILD), moment, str(markers), *TINY, *overrides,
               f"hydra.run.dir={tmp_path / 'run'}"]
    output = open(tmp_path / f"{moment}.log", "w")
    return subprocess.Popen(command, env=_env(tmp_path), cwd=tmp_path, stdout=output,
                            stderr=subprocess.STDOUT, text=True)


def run_precompute(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "crema_exp.precompute", *TINY, *overrides,
               f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, env=_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=240)


def compose_precompute(tmp_path: Path, monkeypatch, *overrides: str):
    """The config `run_precompute` gets, for a build in this process (same generated corpus)."""
    monkeypatch.setenv("CREMA_EXP_CACHE", str(tmp_path / "cache"))
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("precompute", overrides=[*TINY, *overrides])


def printed_root(stdout: str) -> Path:
    return Path(next(l for l in stdout.splitlines() if l.startswith("feature store: "))
                .removeprefix("feature store: "))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's reaper may be slow in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def open_files(pid: int) -> set[Path]:
    """Files a process has open (Linux /proc)."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            pass  # closed meanwhile
    return found


def sigkill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def one_clear_error(done: subprocess.CompletedProcess) -> str:
    """The job failed with the user-error status and one `error:` message, no traceback."""
    assert done.returncode == EXIT_USER_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


# ---------------------------------------------------------------------------- SIGKILL


@pytest.mark.slow
def test_sigkill_at_several_moments_then_next_run_completes_byte_identical(tmp_path, monkeypatch):
    markers = tmp_path / "markers"

    # 1. while two pool workers extract chunks
    child = start_child(tmp_path, "extract")
    workers_log = markers / "workers.log"

    def workers() -> set[int]:
        return {int(p) for p in workers_log.read_text().split()} if workers_log.exists() else set()

    wait_for(lambda: len(workers()) >= 2, 180, "two pool workers to finish a chunk each")
    busy = workers()
    assert child.pid not in busy and all(running(pid) for pid in busy)
    feature_dir = tmp_path / "cache" / "features"
    lock = next(feature_dir.glob("*.lock"))
    assert lock in open_files(child.pid) and not any(lock in open_files(pid) for pid in busy)
    sigkill(child)
    wait_for(lambda: not any(running(pid) for pid in busy), 10, "the workers to die with it")
    root = next(p for p in feature_dir.iterdir() if p.is_dir())
    assert not (root / "metadata.json").exists()
    assert list((root / "parts").glob("part-*.npz"))

    # 2. during consolidation, 3. before metadata.json: each run resumes, none waits
    for moment in ("consolidate", "metadata"):
        child = start_child(tmp_path, moment)
        wait_for(lambda: (markers / moment).exists() or child.poll() is not None, 180, moment)
        assert child.poll() is None, (tmp_path / f"{moment}.log").read_text()[-3000:]
        sigkill(child)
        assert not (root / "metadata.json").exists()
        assert "waiting" not in (tmp_path / f"{moment}.log").read_text()

    log_text = (tmp_path / "metadata.log").read_text()
    assert "Resuming" in log_text and "already done" in log_text

    finished = start_child(tmp_path, "none")
    assert finished.wait(timeout=180) == 0, (tmp_path / "none.log").read_text()[-3000:]
    assert "waiting" not in (tmp_path / "none.log").read_text()
    assert not (root / "parts").exists() and not list(root.rglob(".*.tmp-*"))

    clean = compose_precompute(tmp_path, monkeypatch, f"paths.feature_dir={tmp_path / 'clean'}")
    reference = ensure_store(clean).root  # uninterrupted, in this process
    assert reference.name == root.name
    assert store_files(root) == store_files(reference)
    assert set(store_files(root)) >= {"spectral.npy", "index.csv", "manifest.csv"}
    recorded = [json.loads((r / "metadata.json").read_text())["files"] for r in (root, reference)]
    assert recorded[0] == recorded[1]
    check_store(FeatureStore(root), verify=True)


# ---------------------------------------------------------------------------- the build lock


def _hold_lock(lock: Path, marker: Path, orphan: bool) -> subprocess.Popen:
    """A process holding ``lock``; with ``orphan`` it also forks a child that keeps the fd
    (what pool workers did before they closed it) and writes that child's pid to ``marker``."""
    script = f"""
import os, time
from pathlib import Path
from crema_exp.features.store_lock import build_lock
with build_lock(Path({str(lock)!r})):
    if {orphan!r} and os.fork() == 0:
        time.sleep(600)
        os._exit(0)
    Path({str(marker)!r}).write_text("held")
    time.sleep(600)
"""
    return subprocess.Popen([sys.executable, "-c", script])


def _acquire_in_thread(lock: Path) -> threading.Event:
    acquired = threading.Event()

    def take() -> None:
        with build_lock(lock):
            acquired.set()

    threading.Thread(target=take, daemon=True).start()
    return acquired


def test_waiting_process_names_the_holder_and_goes_on_when_it_is_killed(tmp_path, caplog):
    lock, marker = tmp_path / "store.lock", tmp_path / "held"
    holder = _hold_lock(lock, marker, orphan=False)
    try:
        wait_for(marker.exists, 60, "the holder to take the lock")
        record = json.loads(lock.read_text())
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
        with caplog.at_level("INFO", logger="crema_exp.features.store_lock"):
            acquired = _acquire_in_thread(lock)
            wait_for(lambda: f"pid {holder.pid} on {socket.gethostname()}" in caplog.text, 10,
                     "the waiting message")
            assert "waiting on" in caplog.text and not acquired.is_set()
            sigkill(holder)
            assert acquired.wait(10)
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists() and lock.read_text() == ""  # released: no holder recorded


def test_lock_kept_alive_by_an_orphan_of_a_killed_holder_is_taken_over(tmp_path, caplog):
    lock, marker = tmp_path / "store.lock", tmp_path / "held"
    holder = _hold_lock(lock, marker, orphan=True)
    orphans = []
    try:
        wait_for(marker.exists, 60, "the holder to take the lock")
        orphans = [int(p) for p in
                   subprocess.run(["pgrep", "-P", str(holder.pid)], capture_output=True,
                                  text=True).stdout.split()]
        assert len(orphans) == 1
        sigkill(holder)
        assert running(orphans[0])  # it still holds the flock on the lock file
        with caplog.at_level("INFO", logger="crema_exp.features.store_lock"):
            assert _acquire_in_thread(lock).wait(5)
        assert f"pid {holder.pid}" in caplog.text and "is gone" in caplog.text
    finally:
        holder.kill()
        holder.wait()
        for pid in orphans:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- damaged stores


@pytest.fixture
def built(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "wavs")
    monkeypatch.setattr(precompute, "load_corpus", lambda data, paths: corpus)
    store = ensure_store(make_cfg(tmp_path), FakeExtractor())
    return store, store_files(store.root)


def _drop_index_row(root: Path) -> Path:
    path = root / "index.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    return path


def _shorten_array(root: Path) -> Path:
    path = root / "spectral.npy"
    os.truncate(path, path.stat().st_size - 8)
    return path


def _zero_region(root: Path) -> Path:
    path = root / "spectral.npy"
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(bytes(64))
    return path


def _lose_file(root: Path) -> Path:
    path = root / "manifest.csv"
    path.unlink()
    return path


def _hand_edited_index(root: Path) -> Path:
    """Rows removed and metadata.json's recorded size edited to match: the index check remains."""
    path = _drop_index_row(root)
    meta_path = root / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["index.csv"]["bytes"] = path.stat().st_size
    meta_path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("damage, caught_by", [
    (_drop_index_row, "cheap"), (_shorten_array, "cheap"), (_lose_file, "cheap"),
    (_hand_edited_index, "cheap"), (_zero_region, "verify")])
def test_damaged_store_is_refused_naming_the_file_and_the_rebuild(built, tmp_path, damage,
                                                                 caught_by):
    store, original = built
    path = damage(store.root)
    if caught_by == "verify":
        assert ensure_store(make_cfg(tmp_path), FakeExtractor()).root == store.root
        cfg = make_cfg(tmp_path)
        cfg.verify = True
        with pytest.raises(StoreError, match="sha256") as error:
            ensure_store(cfg, FakeExtractor())
    else:
        with pytest.raises(StoreError) as error:
            ensure_store(make_cfg(tmp_path), FakeExtractor())
    message = str(error.value)
    assert message.startswith(str(path)) and "damaged" in message
    assert "rebuild=true" in message and f"rm -r {store.root}" in message

    cfg = make_cfg(tmp_path)
    cfg.rebuild = True
    extractor = FakeExtractor()
    assert ensure_store(cfg, extractor).root == store.root and extractor.calls > 0
    assert store_files(store.root) == original
    check_store(FeatureStore(store.root), verify=True)


def test_views_written_after_the_build_are_neither_recorded_nor_checked(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "wavs")
    monkeypatch.setattr(precompute, "load_corpus", lambda data, paths: corpus)
    cfg = make_cfg(tmp_path)
    store = ensure_store(cfg, FakeExtractor())
    assert set(store.metadata["files"]) == {"index.csv", "manifest.csv", "skipped.csv",
                                            "spectral.npy"}
    view = ensure_view(store, corpus.manifest, cfg.data)
    view.normalisation("spectral")
    assert (view.root / "splits.csv").is_file() and (view.root / "spectral.npz").is_file()
    cfg.verify = True
    extractor = FakeExtractor()
    assert ensure_store(cfg, extractor).root == store.root and extractor.calls == 0


@pytest.mark.slow
def test_cli_reports_a_damaged_store_in_one_line_and_rebuilds_it(tmp_path, monkeypatch):
    root = ensure_store(compose_precompute(tmp_path, monkeypatch)).root
    original = store_files(root)
    _zero_region(root)
    error = one_clear_error(run_precompute(tmp_path, "verify=true"))
    assert str(root / "spectral.npy") in error and "sha256" in error
    _shorten_array(root)
    error = one_clear_error(run_precompute(tmp_path))
    assert str(root / "spectral.npy") in error and "rebuild=true" in error
    assert ensure_store(compose_precompute(tmp_path, monkeypatch, "rebuild=true")).root == root
    assert store_files(root) == original


# ---------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (needs root with CAP_SYS_ADMIN, e.g. a CI container run as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CAP_SYS_ADMIN)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _ballast(mount: Path, name: str, keep_free: int) -> Path:
    """Fill ``mount`` until ``keep_free`` bytes are left."""
    path = mount / name
    size = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize - keep_free
    with open(path, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, size)
    return path


@pytest.mark.slow
def test_full_disk_is_one_clear_error_and_the_job_resumes_after_space_is_freed(tmp_path,
                                                                               small_disk):
    features = f"paths.feature_dir={small_disk / 'features'}"
    # the store is about 2.8 MB of arrays, and as much again in parts while it is built
    second = _ballast(small_disk, "ballast-2", keep_free=4 << 20)
    first = _ballast(small_disk, "ballast-1", keep_free=1 << 20)

    def nothing_complete_and_no_temp_files() -> None:
        assert not list(small_disk.rglob("metadata.json"))
        assert not list(small_disk.rglob(".*.tmp-*"))

    error = one_clear_error(run_precompute(tmp_path, features))  # writing parts (in a worker)
    assert "/parts/part-" in error and "disk full: writing it needs" in error and "free" in error
    nothing_complete_and_no_temp_files()

    first.unlink()  # room for the parts, not for the arrays as well
    error = one_clear_error(run_precompute(tmp_path, features))
    assert "disk full: consolidating its arrays needs" in error and "/parts/" not in error
    nothing_complete_and_no_temp_files()

    second.unlink()
    done = run_precompute(tmp_path, features)
    assert done.returncode == 0, done.stderr[-3000:]
    root = printed_root(done.stdout)
    assert "Resuming" in done.stderr + (tmp_path / "run" / "precompute.log").read_text()
    check_store(FeatureStore(root), verify=True)
    frames = pd.read_csv(root / "index.csv")["length"].sum()
    assert np.load(root / "spectral.npy", mmap_mode="r").shape[0] == frames
