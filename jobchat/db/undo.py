"""What a transaction changed outside the database, undone if it rolls back.

A send counts against its author's rate (jobchat.ratelimit) before it writes. When its
transaction then rolls back (the database went away, a check after the count refused it, a
group commit's batch was spoiled by another send and ran again), nothing was sent, and the count
must not stand: the next attempt would be refused for a send that never happened. Whoever
changes such state in a transaction leaves its undo here; the database's sessions run the undos
when they roll back and forget them when they commit (``Database`` listens for both).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

_UNDO = "jobchat_undo_on_rollback"

Undo = Callable[[], None]


def undo_on_rollback(session: Session, undo: Undo) -> None:
    """Run ``undo`` if the session's transaction rolls back; forget it if it commits."""
    session.info.setdefault(_UNDO, []).append(undo)


def mark(session: Session) -> int:
    """How many undos the transaction holds: ``undo_since`` undoes what came after."""
    return len(session.info.get(_UNDO, ()))


def undo_since(session: Session, since: int = 0) -> None:
    """Run, latest first, the undos left after ``mark`` was ``since``, and drop them: the work
    that left them was refused while the transaction goes on (a group commit's batch)."""
    undos: list[Undo] = session.info.get(_UNDO, [])
    left, session.info[_UNDO] = undos[since:], undos[:since]
    for undo in reversed(left):
        undo()


def rolled_back(session: Session) -> None:
    undo_since(session)


def committed(session: Session) -> None:
    session.info.pop(_UNDO, None)
