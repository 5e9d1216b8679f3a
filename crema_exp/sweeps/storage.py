"""Optuna storage URLs: SQLite files that do not depend on the working directory, no leaked passwords."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

SQLITE_PREFIX = "sqlite:///"


def absolute_storage_url(url: str | None) -> str | None:
    """Make a relative SQLite path absolute (taken from the cwd) and create its folder.

    SQLite does not create missing folders, and the sweep folder that holds the database is created
    by the launcher only after the study is opened.
    """
    if url is None or not url.startswith(SQLITE_PREFIX):
        return url
    path = Path(url[len(SQLITE_PREFIX):]).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLITE_PREFIX + str(path)


def printable_storage_url(url: str | None) -> str | None:
    """The URL with any password masked, safe for logs and run folders."""
    if url is None:
        return None
    return make_url(url).render_as_string(hide_password=True)
