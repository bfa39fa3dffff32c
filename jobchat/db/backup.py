"""``jobchat db backup``: a consistent copy of a SQLite database, taken while it serves.

Copying the file would not do: a live database is the file plus its write-ahead log, and a copy
made while a writer commits can tear. SQLite's online backup API copies the pages as one read
transaction sees them, and in WAL mode a reader blocks no writer, so the copy is a snapshot of
one moment and the servers go on writing meanwhile. It is done in one step: a copy made in
several steps restarts whenever another process writes, and might never finish on a busy server.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """Why no backup was made, in one line for the operator."""


@dataclass(frozen=True)
class Backup:
    source: Path
    target: Path
    size: int


def backup_sqlite(database_url: str, target: Path, *, force: bool = False) -> Backup:
    """Copy the SQLite database of ``database_url`` to ``target``.

    The copy is written beside ``target`` under a temporary name, checked, flushed to disk and
    only then put in place, so ``target`` is never a half-written file. An existing ``target`` is
    left alone unless ``force``.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"the database is {url.get_backend_name()}, and jobchat db backup copies SQLite "
            "databases only: back PostgreSQL up with pg_dump (pg_dump --format=custom "
            "--file=jobchat.dump DBNAME; see docs/deploy.md)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("the database is in memory: there is nothing to back up")
    source = Path(url.database)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists: choose a new file, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")

    descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(descriptor)
    partial = Path(name)
    try:
        _copy(source, partial)
        _publish(partial, target, force=force)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(source=source, target=target, size=target.stat().st_size)


def _copy(source: Path, partial: Path) -> None:
    # timeout: a reader waits only for the brief locks a checkpoint takes, never for writers.
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst)  # pages=-1: everything in one step, one snapshot
        # A file that opens on its own: no -wal beside it to lose on the way to storage.
        dst.execute("PRAGMA journal_mode=DELETE")
        problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise BackupError(f"the copy failed its check: {'; '.join(problems[:3])}")
    with partial.open("rb") as copy:
        os.fsync(copy.fileno())


def _publish(partial: Path, target: Path, *, force: bool) -> None:
    if force:
        os.replace(partial, target)
        return
    try:
        # A hard link fails if the target appeared meanwhile: never overwrite without --force.
        os.link(partial, target)
    except FileExistsError:
        raise BackupError(
            f"{target} exists: choose a new file, or pass --force to replace it"
        ) from None
