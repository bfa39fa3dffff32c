"""What a new message moves on, in two prepared statements instead of the unit of work: the
conversation (its last message and activity) and every member's read state (the recipients
count one more unread message; the writer has read everything).

Both go straight to the driver's cursor (``jobchat.db.prepared``; parameters named ``b_…``:
SQLAlchemy keeps the columns' own names for itself), built once at import, and the objects
already loaded in the session are given the new values as committed ones, so the commit's flush
has nothing left to write. Through the ORM, the two flushes cost a send more CPU than the
statements themselves (bench/bench_send.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, case, func, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jobchat.conversations.models import Conversation, Member
from jobchat.conversations.unread import expire_loaded_members
from jobchat.db.prepared import Prepared

_CONVERSATIONS = cast(Table, Conversation.__table__)
_MEMBERS = cast(Table, Member.__table__)

_MOVE_CONVERSATION = Prepared(
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("b_conversation_id"))
    .values(
        last_message_id=bindparam("b_message_id"),
        last_activity_at=bindparam("b_active_at", type_=_CONVERSATIONS.c.last_activity_at.type),
    )
)

_writer = _MEMBERS.c.user_id == bindparam("b_writer_id")
_BUMP_MEMBERS = Prepared(
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


def move_conversation(
    session: Session, conv: Conversation, message_id: int, active_at: datetime
) -> None:
    """The conversation's last message is ``message_id``, its activity ``active_at``."""
    _MOVE_CONVERSATION.run(
        session.connection(),
        {"b_conversation_id": conv.id, "b_message_id": message_id, "b_active_at": active_at},
    )
    set_committed_value(conv, "last_message_id", message_id)
    set_committed_value(conv, "last_activity_at", active_at)


def bump_members(
    session: Session,
    writer: Member,
    message_id: int,
    *,
    active_at: datetime,
    notify_due_at: datetime,
) -> dict[int, int]:
    """Every member of the writer's conversation moves to ``active_at``; the others count one
    more unread message (their email clock starts if it was not running), the writer has read
    up to ``message_id``. Returns the others' new unread counts, by user id."""
    rows = _BUMP_MEMBERS.run(
        session.connection(),
        {
            "b_conversation_id": writer.conversation_id,
            "b_writer_id": writer.user_id,
            "b_message_id": message_id,
            "b_active_at": active_at,
            "b_notify_due_at": notify_due_at,
        },
    )
    counts = {user_id: count for user_id, count in rows.rows if user_id != writer.user_id}
    # Members loaded in this session reload on their next use; the writer's row is given its
    # new values (the caller reads them).
    expire_loaded_members(session, writer.conversation_id, counts)
    set_committed_value(writer, "unread_count", 0)
    set_committed_value(writer, "last_read_message_id", message_id)
    set_committed_value(writer, "last_activity_at", active_at)
    return counts
