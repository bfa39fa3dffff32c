"""What a new message moves on, in prepared statements instead of the unit of work: the
conversation (its last message and activity) and every member's read state (the recipients
count one more unread message; the writer has read everything).

They go straight to the driver's cursor (``jobchat.db.prepared``; parameters named ``b_…``:
SQLAlchemy keeps the columns' own names for itself), built once at import, and the objects
already loaded in the session are given the new values as committed ones, so the commit's flush
has nothing left to write. Through the ORM, the two flushes cost a send more CPU than the
statements themselves (bench/bench_send.py).

On PostgreSQL it is one statement, which also locks the users whose badge totals the send
shifts next (``conversations.unread.locking_in_order``): every statement is a round trip and
about 0.1 ms of the driver's and the server's CPU, and a send ran three here (two UPDATEs and
the lock). SQLite writes its two UPDATEs (it has no data-modifying CTEs, and one writer at a
time needs no lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Boolean, Table, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.unread import expire_loaded_members, locking_in_order
from jobchat.db.prepared import Prepared
from jobchat.directory.models import User

_CONVERSATIONS = cast(Table, Conversation.__table__)
_MEMBERS = cast(Table, Member.__table__)
_USERS_ID = cast(Table, User.__table__).c.id

_move = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("b_conversation_id"))
    .values(
        last_message_id=bindparam("b_message_id"),
        last_activity_at=bindparam("b_active_at", type_=_CONVERSATIONS.c.last_activity_at.type),
    )
)

_writer = _MEMBERS.c.user_id == bindparam("b_writer_id")
_bump = (
    update(_MEMBERS)
    .where(_MEMBERS.c.conversation_id == bindparam("b_conversation_id"))
    .values(
        unread_count=case((_writer, 0), else_=_MEMBERS.c.unread_count + 1),
        last_read_message_id=case(
            (_writer, bindparam("b_message_id")), else_=_MEMBERS.c.last_read_message_id
        ),
        last_activity_at=bindparam("b_active_at", type_=_MEMBERS.c.last_activity_at.type),
        # The first unread message starts the clock of the email notification (the writer's
        # stays as it was).
        notify_due_at=case(
            (_writer, _MEMBERS.c.notify_due_at),
            else_=func.coalesce(
                _MEMBERS.c.notify_due_at,
                bindparam("b_notify_due_at", type_=_MEMBERS.c.notify_due_at.type),
            ),
        ),
    )
    .returning(_MEMBERS.c.user_id, _MEMBERS.c.unread_count)
)
_MOVE_CONVERSATION = Prepared(_move)
_BUMP_MEMBERS = Prepared(_bump)


def _moved_bumped_locked() -> Prepared:
    """PostgreSQL: both UPDATEs and the lock of the members' users (the writer's only when
    ``b_lock_writer``) as one statement, returning the members' (user id, unread count).

    The lock's rows must all be read for all to be locked: the count of them does that, a
    subquery of the select list (run once, for the first row; there is always one, the
    writer's)."""
    moved = _move.cte("moved")
    bumped = _bump.cte("bumped")
    to_lock = select(bumped.c.user_id).where(
        or_(
            bumped.c.user_id != bindparam("b_writer_id"),
            bindparam("b_lock_writer", type_=Boolean()),
        )
    )
    locked = locking_in_order(_USERS_ID.in_(to_lock)).cte("locked")
    everyone_locked = select(func.count()).select_from(locked).scalar_subquery()
    return Prepared(select(bumped.c.user_id, bumped.c.unread_count, everyone_locked).add_cte(moved))


_MOVED_BUMPED_LOCKED = _moved_bumped_locked()


@dataclass(frozen=True, slots=True)
class Bumped:
    """The other members' new unread counts, by user id; ``users_locked``: their users' rows
    (and the writer's, if asked) are locked for ``shift_totals(..., locked=True)``."""

    counts: dict[int, int]
    users_locked: bool


def bump(
    session: Session,
    conv: Conversation,
    writer: Member,
    message_id: int,
    *,
    active_at: datetime,
    notify_due_at: datetime,
    lock_writer: bool,
) -> Bumped:
    """The conversation's last message is ``message_id``, its activity ``active_at``; every
    member moves to ``active_at``, the others count one more unread message (their email clock
    starts if it was not running), the writer has read up to ``message_id``. On PostgreSQL the
    others' users are locked for their badge totals in the same statement, and the writer's
    too if ``lock_writer`` (their totals shift only if they had something unread)."""
    connection = session.connection()
    params = {
        "b_conversation_id": conv.id,
        "b_writer_id": writer.user_id,
        "b_message_id": message_id,
        "b_active_at": active_at,
        "b_notify_due_at": notify_due_at,
    }
    locked = connection.dialect.name == "postgresql"
    if locked:
        rows = _MOVED_BUMPED_LOCKED.run(connection, params | {"b_lock_writer": lock_writer}).rows
    else:
        _MOVE_CONVERSATION.run(connection, params)
        rows = _BUMP_MEMBERS.run(connection, params).rows
    set_committed_value(conv, "last_message_id", message_id)
    set_committed_value(conv, "last_activity_at", active_at)
    counts = {row[0]: row[1] for row in rows if row[0] != writer.user_id}
    # Members loaded in this session reload on their next use; the writer's row is given its
    # new values (the caller reads them).
    expire_loaded_members(session, writer.conversation_id, counts)
    set_committed_value(writer, "unread_count", 0)
    set_committed_value(writer, "last_read_message_id", message_id)
    set_committed_value(writer, "last_activity_at", active_at)
    return Bumped(counts, users_locked=locked)
