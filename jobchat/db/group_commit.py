"""Group commit: writers that come while one is writing share the next transaction.

Concurrent senders in one process would each pay for a transaction of their own: a session, a
pooled connection, the write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's advisory locks),
the ``COMMIT`` and its flush to disk, the turn handed on and the next thread woken. That was a
fifth of a send's CPU with 32 senders on SQLite (bench/bench_send.py). On PostgreSQL, sends into
different conversations ran side by side instead, but one process's threads share one
interpreter: eight at once cost a quarter more CPU per send than one at a time and sent no more
(bench_send.py --concurrency 32). So here a writer that finds another writing leaves its work in
a queue; when the running batch is done, the first waiting writer takes everything queued by then
and runs it in one transaction, one piece after another, each piece seeing what the earlier ones
wrote as it would in a transaction of its own, and commits once. Alone, a writer runs at once, as
before.

Each piece names its key (the conversation it writes into). The batch's transaction is begun
for its first piece's key (on PostgreSQL: that conversation's lock, waited for); the others'
keys are then claimed without waiting (``claim``), and a piece whose key another transaction
holds is left out of the batch and runs alone after its commit. Waiting for a second lock while
holding the first could deadlock against another process's batch doing the reverse.

What one piece does wrong stays its own: a piece that raises having written nothing (not
found, forbidden, rate limited: every check comes before the writes) gets its error and the
batch goes on. One that raises after writing cannot be taken out of the transaction, so the
batch is rolled back: that piece gets its error, and every other is run again in a transaction
of its own (a rolled-back piece changed nothing, so running it again sends nothing twice). A
piece that met a deadlock with another process's transaction runs again alone too: alone, it
waits for locks as any send does. A batch whose commit fails gives every piece the error: none
of them was stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from jobchat.db import undo
from jobchat.db.failures import is_conflict
from jobchat.db.turn import WriteBusy, WriteTurn
from jobchat.errors import AppError

T = TypeVar("T")

# The most pieces one transaction takes: a batch is answered when its commit is done, so a long
# one would hold its first writers back for the sake of its last.
MAX_BATCH = 32

# A write transaction for this key (the batch's first piece's, or a piece's alone).
Begin = Callable[[int], AbstractContextManager[Session]]
# Of these keys (none of them the batch's first), those the transaction could not take at once.
Claim = Callable[[Session, Collection[int]], Collection[int]]
# How many rows the session's connection has changed so far (any count that grows with them).
Changes = Callable[[Session], int]


class _Piece(Generic[T]):
    __slots__ = ("alone", "deadline", "done", "error", "key", "lead", "result", "work")

    def __init__(self, work: Callable[[Session], T], key: int, deadline: float) -> None:
        self.work = work
        self.key = key
        self.deadline = deadline
        self.result: T | None = None
        self.error: BaseException | None = None
        # Whether the writer is woken to lead the next batch rather than with its answer.
        self.lead = False
        # Whether the writer is woken to run it in a transaction of its own (see _claimed).
        self.alone = False
        self.done = threading.Lock()
        self.done.acquire()  # released when answered, or when it is this piece's turn to lead


class _Poisoned(Exception):
    """A piece raised after it wrote: the batch's transaction must be rolled back."""


class GroupCommit:
    """``run(work)`` runs ``work(session)`` in a write transaction (from ``begin``) that it may
    share with the work of other threads, and returns what ``work`` returned, or raises what it
    raised. ``work`` must not commit, and must be safe to run again in a new transaction when
    its batch is rolled back (writing only through the session)."""

    def __init__(
        self, begin: Begin, turn: WriteTurn, *, changes: Changes, claim: Claim | None = None
    ) -> None:
        self._begin = begin
        self._changes = changes
        self._claim = claim
        # The turn's bounds are the batch's too: a writer waits for its batch as long as it would
        # wait for the turn, and as many may wait.
        self._turn = turn
        self._mutex = threading.Lock()
        self._queue: list[_Piece[Any]] = []
        self._leading = False
        self._leader: int | None = None  # the thread running a batch now

    def run(self, work: Callable[[Session], T], key: int) -> T:
        piece: _Piece[T] = _Piece(work, key, time.monotonic() + self._turn.timeout)
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
        if piece.alone:
            self._alone(piece)
        elif leader or piece.lead:
            self._lead(piece)
        if piece.error is not None:
            raise piece.error
        return piece.result  # type: ignore[return-value]  # set when error is None

    def _lead(self, own: _Piece[Any]) -> None:
        """Run what is queued (this thread's piece first among them) as one batch, then hand
        the lead to the first writer that came meanwhile, or give it up. The writers of pieces
        left out of the batch are woken to run them alone."""
        batch: list[_Piece[Any]] = []
        later: list[_Piece[Any]] = []
        self._leader = threading.get_ident()
        try:
            later = self._run(batch, own.key)
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
                # Left out (never this thread's own: the batch began with its conversation),
                # each waits for its conversation on its own thread, beside the next batch.
                piece.alone = piece in later
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

    def _run(self, batch: list[_Piece[Any]], first: int) -> list[_Piece[Any]]:
        """Run the batch, begun for ``first`` (this thread's own piece's key: the piece is first
        in the queue); returns the pieces left out of it, still to be run."""
        due: list[_Piece[Any]] = []
        later: list[_Piece[Any]] = []
        try:
            with self._begin(first) as session:
                # Taken once the transaction has begun: whoever came while it waited for the
                # write lock is in it too.
                due, later = self._claimed(session, first, self._take(batch))
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
            return []
        return later

    def _claimed(
        self, session: Session, first: int, due: list[_Piece[Any]]
    ) -> tuple[list[_Piece[Any]], list[_Piece[Any]]]:
        """``due`` split into the pieces this transaction may run (their keys taken) and those
        whose key another transaction holds (run alone after this one)."""
        others = {piece.key for piece in due} - {first}
        if self._claim is None or not others:
            return due, []
        refused = set(self._claim(session, others))
        if not refused:
            return due, []
        return (
            [piece for piece in due if piece.key not in refused],
            [piece for piece in due if piece.key in refused],
        )

    def _alone(self, piece: _Piece[Any]) -> None:
        piece.result = None
        try:
            with self._begin(piece.key) as session:
                piece.result = piece.work(session)
        except Exception as exc:
            piece.error = exc

    def _one_of_many(self, session: Session, piece: _Piece[Any]) -> None:
        before = self._changes(session)
        undos = undo.mark(session)
        try:
            piece.result = piece.work(session)
            session.flush()
        except Exception as exc:
            # A deadlock with another transaction: rolled back with the batch, it runs again
            # alone (where it waits for its locks holding none of the batch's).
            piece.error = None if is_conflict(exc) else exc
            # Only a refusal of ours that changed nothing leaves the transaction as it was: a
            # database error may have left the session or the connection needing a rollback
            # (so it is not asked anything then).
            if (
                not isinstance(exc, AppError)
                or self._changes(session) != before
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
