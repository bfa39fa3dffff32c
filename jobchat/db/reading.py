"""A read on a bare connection, for the hottest reads: the inbox and a conversation's history.

Every statement those pages run is a prepared statement on the driver's cursor
(``jobchat.db.prepared``), so the ORM session around them did nothing but cost: making it,
beginning and committing its transaction and closing it took 0.14-0.21 ms of a request, against
0.04-0.10 ms for the connection alone (SQLite and PostgreSQL, measured in process): 7-9% of a
history page's instructions (bench/bench_instructions.py). A ``Reading`` is the connection,
and a session on that same connection (in its transaction: the same snapshot) made only when a
rare part of the read needs the ORM (an inbox filtered by a job, a conversation whose newest
message the viewer deleted for themself).

``Database.reading()`` opens one for a request; code that has a session already (rendering a
conversation just written, in the write's transaction) passes ``Reading.within(session)``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from jobchat.db.prepared import connection_of


class Reading:
    __slots__ = ("_open_session", "_session", "connection")

    def __init__(
        self,
        connection: Connection,
        *,
        session: Session | None = None,
        open_session: Callable[[Connection], Session] | None = None,
    ) -> None:
        if (session is None) == (open_session is None):
            raise ValueError("a Reading is given either its session or the way to open one")
        self.connection = connection
        self._session = session
        self._open_session = open_session

    @classmethod
    def within(cls, session: Session) -> Reading:
        """A reading in ``session``'s transaction (what it holds unflushed is written first, as
        its own queries would)."""
        return cls(connection_of(session), session=session)

    @property
    def session(self) -> Session:
        """An ORM session on the same connection, opened on first use."""
        if self._session is None:
            assert self._open_session is not None
            self._session = self._open_session(self.connection)
        return self._session

    def close(self) -> None:
        """Close the session this reading opened, if it did (one it was given is its owner's)."""
        if self._open_session is not None and self._session is not None:
            self._session.close()
            self._session = None
