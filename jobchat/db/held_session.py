"""SQLite's write session: one session on one connection, kept from one transaction to the next.

SQLite writes one transaction at a time, and this process's writers take turns before they
write (``jobchat.db.turn``), so one connection and one session can serve every writer in turn.
Making a session for each write transaction, checking a connection out of the pool for it and
back in (the pool's reset-on-return included) was about half of the 250 µs of CPU that
SQLAlchemy spent on a transaction that wrote nothing (130 µs with the session kept, 45 µs with
the connection alone); a send took 6% more instructions than with the session kept
(bench/bench_instructions.py).

Between two transactions the session is closed (its objects detached, as closing a session of
one's own detaches them) and its ``info`` emptied, so each transaction starts as a new session
would. A connection that a failure left invalidated or inside a transaction is not kept: the
next write gets a new one from the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker


class HeldSession:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self._engine = engine
        self._sessions = sessions
        self._session: Session | None = None
        self._connection: Connection | None = None  # the session's bind
        # Held while the session is in use. The write turn is reentrant: a write opened inside
        # another (on its thread) gets a session of its own, as every write used to.
        self._using = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The kept session, for one transaction (taken while holding the write turn); a new
        one if it is in use."""
        if not self._using.acquire(blocking=False):
            with self._sessions() as own:
                yield own
            return
        try:
            session, connection = self._session, self._connection
            if session is None or connection is None:
                connection = self._connection = self._engine.connect()
                session = self._session = self._sessions(bind=connection)
            kept = False
            try:
                yield session
            finally:
                try:
                    session.close()
                    session.info.clear()
                    kept = _reusable(connection)
                finally:
                    if not kept:
                        self._drop()
        finally:
            self._using.release()

    def close(self) -> None:
        """Give the connection back (the database is being disposed of), once a write using it
        has ended."""
        with self._using:
            self._drop()

    def _drop(self) -> None:
        session, self._session = self._session, None
        connection, self._connection = self._connection, None
        if session is not None:
            session.close()
        if connection is not None:
            connection.close()


def _reusable(connection: Connection) -> bool:
    """Whether the connection is as a new one from the pool would be: valid, and outside any
    transaction (SQLAlchemy's and SQLite's)."""
    if connection.invalidated or connection.closed or connection.in_transaction():
        return False
    sqlite = connection.connection.dbapi_connection
    return sqlite is not None and not sqlite.in_transaction
