"""A throw-away PostgreSQL server for tests: initdb + pg_ctl in a temporary folder, unix socket only.

Debian's packages (apt-get install postgresql) put the binaries in /usr/lib/postgresql/<v>/bin.
initdb refuses to run as root, so as root the server runs as the ``postgres`` user (runuser).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_no_postgres() -> str | None:
    """None when a server can be started here, else the reason (for pytest.skip)."""
    if postgres_bin() is None:
        return "PostgreSQL binaries not found (apt-get install postgresql; .ci/run does it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user for initdb"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start initdb as 'postgres'"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (requirements.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields an SQLAlchemy URL of a fresh, empty database; the server is stopped at the end."""
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="crema-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
            f"-k {root} -p {port} -c listen_addresses='' -c fsync=off", "start")
        try:
            yield f"postgresql://postgres@/postgres?host={root}&port={port}"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
