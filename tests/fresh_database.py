"""A database that does not exist yet, for tests that run ``jobchat`` processes from scratch.

On SQLite a path in the test's temporary directory; on PostgreSQL (JOBCHAT_TEST_DATABASE_URL) a
new database on that server, created for the test and dropped (connections and all) after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from jobchat.config import Settings


@contextmanager
def fresh_postgres(server_url: str, label: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url`` (a URL as a user would
    write it); its URL, in the same form. Dropped afterwards, even if a process still holds it."""
    server = make_url(Settings(database_url=server_url, _env_file=None).sqlalchemy_url)
    name = f"jobchat_{label}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def fresh_database(pg_url: str | None, tmp_path: Path, label: str) -> Iterator[str]:
    """A new database: on PostgreSQL when ``pg_url`` names a server, else a SQLite file."""
    if pg_url:
        with fresh_postgres(pg_url, label) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / f'{label}.db'}"
