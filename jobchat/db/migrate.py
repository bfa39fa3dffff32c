"""Creating and upgrading the schema with Alembic, from code (no alembic.ini needed).

Every ``jobchat serve``, ``jobchat worker`` and ``jobchat db upgrade`` upgrades on start, and a
deployment starts several at once. Two migrations running side by side on a fresh database both
see no ``alembic_version`` and both create every table: the second fails (a UniqueViolation on
PostgreSQL's catalog, "database is locked" on SQLite). So the upgrade runs under a lock, and
whoever gets it second finds the schema at head and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from jobchat.db.engine import IMMEDIATE

log = logging.getLogger("jobchat.migrate")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# "jobm": the session-level advisory lock key migrations take on PostgreSQL. Not the writers'
# transaction-scoped key (db/engine.py): a start that finds the schema at head must not queue
# behind live writers, nor they behind it.
_MIGRATION_LOCK = 0x6A6F626D

# How long a SQLite upgrade waits for another process's to finish (milliseconds). Far above the
# writers' 10 s busy timeout: a long migration is not an error for the processes waiting on it.
_SQLITE_WAIT_MS = 15 * 60 * 1000


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would choke on "%" in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema; a no-op when it is there already.

    Safe to call from several processes at once on one database: they take turns, and only the
    first has anything to do.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migration_turn(engine) as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    # Alembic's own chatter is kept to warnings (jobchat.ops.logs); this says what happened.
    if after != before:
        if before is None:
            log.info("database schema created (revision %s)", after)
        else:
            log.info("database schema upgraded from revision %s to %s", before, after)


@contextmanager
def _migration_turn(engine: Engine) -> Iterator[Connection]:
    """A connection that alone may migrate until the block ends, with a transaction open."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            with _postgres_turn(connection):
                yield connection
        elif connection.dialect.name == "sqlite":
            with _sqlite_turn(connection):
                yield connection
        else:
            with connection.begin():
                yield connection


@contextmanager
def _postgres_turn(connection: Connection) -> Iterator[None]:
    # A session-level lock outlives the transactions inside it, and PostgreSQL releases it by
    # itself should this process die holding it.
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
    connection.commit()
    try:
        with connection.begin():
            yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
        connection.commit()


@contextmanager
def _sqlite_turn(connection: Connection) -> Iterator[None]:
    # The whole upgrade is one BEGIN IMMEDIATE transaction (SQLite's DDL is transactional): it
    # holds the write lock from its first statement, so a second upgrade waits in BEGIN, then
    # reads alembic_version at head. A deferred transaction would read first and fail at once
    # with "database is locked" on its first write.
    writers_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    connection.exec_driver_sql(f"PRAGMA busy_timeout={_SQLITE_WAIT_MS}")
    connection.commit()
    try:
        with connection.execution_options(**{IMMEDIATE: True}).begin():
            yield
    finally:
        # The pooled connection goes back to the writers with their own timeout.
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(writers_timeout)}")
        connection.commit()
