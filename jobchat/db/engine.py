"""Engines and transactions.

``Database.read()`` and ``Database.write()`` are the only ways code gets a session. On SQLite a
write transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes can fail at once with "database is locked" when another writer got there first, while an
immediate one waits its turn (``busy_timeout``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

_IMMEDIATE = "jobchat_begin_immediate"
_WRITE_LOCK = 0x6A6F6263  # "jobc": the advisory lock key writers take on PostgreSQL
_EVENTS_WRITTEN = "jobchat_events_written"
_JOBS_WRITTEN = "jobchat_jobs_written"


def mark_events_written(session: Session) -> None:
    """Note that this transaction adds events, so that its commit wakes the real-time stream."""
    session.info[_EVENTS_WRITTEN] = True


def mark_jobs_written(session: Session) -> None:
    """Note that this transaction queues jobs, so that its commit wakes this process's worker."""
    session.info[_JOBS_WRITTEN] = True


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN instead of the sqlite3 module, which
        # would only ever issue a deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # This process's writers queue here before they take a connection (see write()).
        self._write_turn = threading.RLock()
        # Called, from the writing thread, after each commit that added events (or jobs).
        self.on_events_committed: list[Callable[[], None]] = []
        self.on_jobs_committed: list[Callable[[], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Writers take turns. PostgreSQL hands out sequence numbers at insert time, not at commit,
        so two concurrent writers could commit event 8 before event 7, and a client resuming
        "after 8" would never see 7. A transaction-scoped advisory lock taken first thing keeps
        event ids in commit order (and, being the only lock taken first, cannot deadlock).
        SQLite's BEGIN IMMEDIATE does the same there.

        Within one process, writers first queue on a lock of their own: the next one starts the
        moment the turn is free, and waits without holding a pooled connection. Left to the
        database, SQLite's busy handler polls in sleeps of up to 100 ms (the lock sat free while
        its waiters slept, and latency went from milliseconds to seconds under load), and every
        waiter held a connection that reads then lacked. Other processes still take turns
        through the database.
        """
        with self._write_turn, self._sessions() as session:
            with session.begin():
                connection = session.connection(execution_options={_IMMEDIATE: True})
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK}
                    )
                yield session
            self._after_commit(session)

    @contextmanager
    def work(self) -> Iterator[Session]:
        """A write transaction for bookkeeping that adds no events (the jobs worker's).

        It skips the event-order lock of ``write()``, so workers on PostgreSQL do not queue
        behind senders and can take jobs side by side with ``FOR UPDATE SKIP LOCKED``. SQLite
        has one writer at a time whatever we do, so there it queues with this process's other
        writers (see ``write()``) rather than in the busy handler.
        """
        turn = self._write_turn if self.is_sqlite else contextlib.nullcontext()
        with turn, self._sessions() as session:
            with session.begin():
                session.connection(execution_options={_IMMEDIATE: True})
                yield session
                if session.info.get(_EVENTS_WRITTEN):
                    raise RuntimeError("events must be written with Database.write()")
            self._after_commit(session)

    def on_session(self, name: str, listener: Callable[..., None]) -> None:
        """Listen to an ORM session event ("after_flush", "after_commit"...) of this database's
        sessions only, not of every database in the process."""
        event.listen(self._sessions, name, listener)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_EVENTS_WRITTEN, False):
            for listener in self.on_events_committed:
                listener()
        if session.info.pop(_JOBS_WRITTEN, False):
            for listener in self.on_jobs_committed:
                listener()

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read transaction whose statements all see the same committed state.

        SQLite's read transactions are snapshots already; PostgreSQL's default (read committed)
        gives each statement its own, so this asks for repeatable read.
        """
        with self._sessions() as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
