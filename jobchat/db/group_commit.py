"""Group commit: writers that come while one is writing share the next transaction (SQLite).

SQLite takes one writer at a time, so concurrent senders queue for the write turn, and each
then pays for a transaction of its own: a session, a pooled connection, ``BEGIN IMMEDIATE``,
the ``COMMIT``, the turn handed on and the next thread woken. That was a fifth of a send's CPU
with 32 senders (bench/bench_send.py). Here a writer that finds another writing leaves its
work in a queue; when the running batch is done, the first waiting writer takes everything
queued by then and runs it in one transaction, one piece after another, each piece seeing what
the earlier ones wrote as it would in a transaction of its own, and commits once. Alone, a
writer runs at once, as before.

What one piece does wrong stays its own: a piece that raises having written nothing (not
found, forbidden, rate limited: every check comes before the writes) gets its error and the
batch goes on. One that raises after writing cannot be taken out of the transaction, so the
batch is rolled back: that piece gets its error, and every other is run again in a transaction
of its own (a rolled-back piece changed nothing, so running it again sends nothing twice). A
batch whose commit fails gives every piece the error: none of them was stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from jobchat.db import undo
from jobchat.db.turn import WriteBusy, WriteTurn
from jobchat.errors import AppError

T = TypeVar("T")

# The most pieces one transaction takes: a batch is answered when its commit is done, so a long
# one would hold its first writers back for the sake of its last.
MAX_BATCH = 32

Begin = Callable[[], AbstractContextManager[Session]]


class _Piece(Generic[T]):
    __slots__ = ("deadline", "done", "error", "lead", "result", "work")

    def __init__(self, work: Callable[[Session], T], deadline: float) -> None:
        self.work = work
        self.deadline = deadline
        self.result: T | None = None
        self.error: BaseException | None = None
        # Whether the writer is woken to lead the next batch rather than with its answer.
        self.lead = False
        self.done = threading.Lock()
        self.done.acquire()  # released when answered, or when it is this piece's turn to lead


class _Poisoned(Exception):
    """A piece raised after it wrote: the batch's transaction must be rolled back."""


class GroupCommit:
    """``run(work)`` runs ``work(session)`` in a write transaction (from ``begin``) that it may
    share with the work of other threads, and returns what ``work`` returned, or raises what it
    raised. ``work`` must not commit, and must be safe to run again in a new transaction when
    its batch is rolled back (writing only through the session)."""

    def __init__(self, begin: Begin, turn: WriteTurn) -> None:
        self._begin = begin
        # The turn's bounds are the batch's too: a writer waits for its batch as long as it would
        # wait for the turn, and as many may wait.
        self._turn = turn
        self._mutex = threading.Lock()
        self._queue: list[_Piece[Any]] = []
        self._leading = False
        self._leader: int | None = None  # the thread running a batch now

    def run(self, work: Callable[[Session], T]) -> T:
        piece: _Piece[T] = _Piece(work, time.monotonic() + self._turn.timeout)
        with self._mutex:
            if self._leader == threading.get_ident():
                # It would wait for the batch it is running: for ever.
                raise RuntimeError("a grouped write cannot be opened inside another")
            if self._leading and len(self._queue) >= self._turn.max_waiting:
                raise WriteBusy(f"{len(self._queue)} writes are already waiting for their turn")
            self._queue.append(piece)
            leader = not self._leading
            self._leading = True
        if not leader:
            piece.done.acquire()
        if leader or piece.lead:
            self._lead()
        if piece.error is not None:
            raise piece.error
        return piece.result  # type: ignore[return-value]  # set when error is None

    def _lead(self) -> None:
        """Run what is queued (this thread's piece first among them) as one batch, then hand
        the lead to the first writer that came meanwhile, or give it up."""
        batch: list[_Piece[Any]] = []
        self._leader = threading.get_ident()
        try:
            self._run(batch)
        finally:
            self._leader = None
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leading = False
            if successor is not None:
                successor.lead = True
                successor.done.release()
            for piece in batch[1:]:  # the first is this thread's own
                piece.done.release()

    def _take(self, batch: list[_Piece[Any]]) -> list[_Piece[Any]]:
        """Move the queue's first pieces into ``batch``; returns those still in time."""
        with self._mutex:
            batch += self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
        now = time.monotonic()
        for piece in batch:
            if now > piece.deadline:
                piece.error = WriteBusy(f"no turn to write within {self._turn.timeout:g} s")
        return [piece for piece in batch if piece.error is None]

    def _run(self, batch: list[_Piece[Any]]) -> None:
        due: list[_Piece[Any]] = []
        try:
            with self._begin() as session:
                # Taken once the transaction has begun: whoever came while it waited for the
                # write lock is in it too.
                due = self._take(batch)
                for piece in due:
                    self._one_of_many(session, piece)
        except _Poisoned:
            for piece in due:
                if piece.error is None:
                    self._alone(piece)
        except BaseException as exc:  # the transaction could not begin or commit: none stored
            if not batch:
                self._take(batch)
            for piece in batch:
                if piece.error is None:
                    piece.result = None
                    piece.error = exc
            if not isinstance(exc, Exception):
                raise

    def _alone(self, piece: _Piece[Any]) -> None:
        piece.result = None
        try:
            with self._begin() as session:
                piece.result = piece.work(session)
        except Exception as exc:
            piece.error = exc

    @staticmethod
    def _one_of_many(session: Session, piece: _Piece[Any]) -> None:
        before = _changes(session)
        undos = undo.mark(session)
        try:
            piece.result = piece.work(session)
            session.flush()
        except Exception as exc:
            piece.error = exc
            # Only a refusal of ours that changed nothing leaves the transaction as it was: a
            # database error may have left the session or the connection needing a rollback
            # (so it is not asked anything then).
            if (
                not isinstance(exc, AppError)
                or _changes(session) != before
                or session.new
                or session.dirty
                or session.deleted
            ):
                raise _Poisoned from exc
            # Refused with the transaction going on: what it counted is taken back here, as
            # its own transaction's rollback would have (a spoiled batch's rollback takes back
            # everyone's, and each is counted again as it runs alone).
            undo.undo_since(session, undos)
        # The next piece reads rows afresh, as it would in a transaction of its own: some of
        # what this one wrote went by statements that the loaded objects do not know of.
        session.expire_all()


def _changes(session: Session) -> int:
    """How many rows this connection's statements have changed so far (SQLite's count)."""
    sqlite: Any = session.connection().connection.dbapi_connection
    return int(sqlite.total_changes)
