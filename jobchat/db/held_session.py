"""Write sessions kept from one transaction to the next, each on its own connection.

Making a session for each write transaction, checking a connection out of the pool for it and
back in (the pool's reset-on-return included) was about half of the 250 µs of CPU that
SQLAlchemy spent on a SQLite transaction that wrote nothing (130 µs with the session kept,
45 µs with the connection alone); a send took 6% more instructions than with the session kept
(bench/bench_instructions.py). On PostgreSQL, kept sessions took an empty write transaction with
its lock statement from 280-330 µs to 220 and a send's instructions in this process from 4.07 M
to 3.67 M (-10%).

So writers take a kept session when one is free and give it back after their transaction; a
writer that finds none free (more writers at once than are kept, or a write opened inside
another on the same thread: the write turn is reentrant) makes one, kept afterwards if fewer
than ``keep`` are. SQLite writes one transaction at a time, so one is kept there; PostgreSQL's
writers may write side by side.

Between two transactions a session is closed (its objects detached, as closing a session of
one's own detaches them) and its ``info`` emptied, so each transaction starts as a new session
would. A connection that a failure left invalidated, closed or inside a transaction is not
kept. A kept connection is outside the pool, which would test one that sat unused before
handing it out (``jobchat.db.engine._PingIfStale``): ``Freshness`` does the same here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker


class Freshness(Protocol):
    """What the pool does for its connections when they come and go, for the kept ones."""

    def given_back(self, connection: Connection) -> None:
        """The connection goes unused from now on."""

    def usable(self, connection: Connection) -> bool:
        """Whether the connection may be used again (tested first if it may be dead)."""


class _Kept:
    __slots__ = ("connection", "generation", "session")

    def __init__(self, session: Session, connection: Connection, generation: int) -> None:
        self.session = session
        self.connection = connection  # the session's bind
        self.generation = generation  # close() lets go of those of earlier generations


class HeldSessions:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        keep: int,
        freshness: Freshness | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._keep = keep
        self._freshness = freshness
        self._free: list[_Kept] = []
        self._lock = threading.Lock()
        self._generation = 0

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for one write transaction: a kept one if one is free."""
        kept = self._take()
        session = kept.session
        reusable = False
        try:
            yield session
        finally:
            try:
                session.close()
                session.info.clear()
                reusable = _reusable(kept.connection)
            finally:
                if not (reusable and self._give_back(kept)):
                    _let_go(kept)

    def close(self) -> None:
        """Let go of the kept connections (the database is being disposed of); one in use is
        let go when its write ends."""
        with self._lock:
            free, self._free = self._free, []
            self._generation += 1
        for kept in free:
            _let_go(kept)

    def _take(self) -> _Kept:
        while True:
            with self._lock:
                kept = self._free.pop() if self._free else None
                generation = self._generation
            if kept is None:
                connection = self._engine.connect()
                return _Kept(self._sessions(bind=connection), connection, generation)
            try:
                if self._freshness is None or self._freshness.usable(kept.connection):
                    return kept
            except BaseException:
                _let_go(kept)
                raise
            _let_go(kept)  # found dead: the next free one, or a new one from the pool

    def _give_back(self, kept: _Kept) -> bool:
        with self._lock:
            if kept.generation != self._generation or len(self._free) >= self._keep:
                return False  # let go instead: the pool's check-in marks it unused
            if self._freshness is not None:
                self._freshness.given_back(kept.connection)
            self._free.append(kept)
            return True


def _let_go(kept: _Kept) -> None:
    kept.session.close()
    kept.connection.close()


def _reusable(connection: Connection) -> bool:
    """Whether the connection is as a new one from the pool would be: valid, and outside any
    transaction (SQLAlchemy's and the driver's)."""
    if connection.invalidated or connection.closed or connection.in_transaction():
        return False
    driver: Any = connection.connection.dbapi_connection
    if driver is None:
        return False
    if connection.dialect.name == "sqlite":
        return not driver.in_transaction
    # psycopg's IDLE: no transaction open or failed, and the connection good.
    return bool(driver.info.transaction_status == TransactionStatus.IDLE)
